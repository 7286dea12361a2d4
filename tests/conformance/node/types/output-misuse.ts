// Must NOT compile: `amount` of the payment status is a number, and `status` is a union without "paid".
import { createTRPCClient, httpBatchLink } from "@trpc/client";
import type { AppRouter } from "../../../../clients/typescript/app-router";

const trpc = createTRPCClient<AppRouter>({ links: [httpBatchLink({ url: "http://localhost:3000/trpc" })] });

export async function show(): Promise<boolean> {
  const s = await trpc.stripe.getPaymentStatus.query({ orderId: "o1" });
  const amount: string = s.amount;
  return amount.length > 0 && s.status === "paid";
}
