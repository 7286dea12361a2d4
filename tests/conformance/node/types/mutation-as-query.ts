// Must NOT compile: stripe.createPaymentIntent is a mutation, it has no `.query`.
import { createTRPCClient, httpBatchLink } from "@trpc/client";
import type { AppRouter } from "../../../../clients/typescript/app-router";

const trpc = createTRPCClient<AppRouter>({ links: [httpBatchLink({ url: "http://localhost:3000/trpc" })] });

export const intent = trpc.stripe.createPaymentIntent.query({ orderId: "o1", amount: 2500, currency: "eur" });
