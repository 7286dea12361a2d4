// Must NOT compile: stripe.getConfig is a query, it has no `.mutate`.
import { createTRPCClient, httpBatchLink } from "@trpc/client";
import type { AppRouter } from "../../../../clients/typescript/app-router";

const trpc = createTRPCClient<AppRouter>({ links: [httpBatchLink({ url: "http://localhost:3000/trpc" })] });

export const config = trpc.stripe.getConfig.mutate();
