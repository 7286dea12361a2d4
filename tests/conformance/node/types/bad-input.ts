// Must NOT compile: `amount` is a number (minor units), not a string.
import { createTRPCClient, httpBatchLink } from "@trpc/client";
import type { AppRouter } from "../../../../clients/typescript/app-router";

const trpc = createTRPCClient<AppRouter>({ links: [httpBatchLink({ url: "http://localhost:3000/trpc" })] });

export const intent = trpc.stripe.createPaymentIntent.mutate({ orderId: "o1", amount: "25.00", currency: "eur" });
