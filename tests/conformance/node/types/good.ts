// Written like the React Native app's code: every procedure, called the way the app calls it. Must compile.
import { createTRPCClient, httpBatchLink, TRPCClientError } from "@trpc/client";
import type { inferRouterInputs, inferRouterOutputs } from "@trpc/server";
import type { AppRouter, PaymentIntentResult } from "../../../../clients/typescript/app-router";

const trpc = createTRPCClient<AppRouter>({
  links: [httpBatchLink({ url: "http://localhost:3000/trpc" })],
});

type Inputs = inferRouterInputs<AppRouter>;
type Outputs = inferRouterOutputs<AppRouter>;

export async function checkout(): Promise<string> {
  const config = await trpc.stripe.getConfig.query();
  const key: string = config.publishableKey;
  const testMode: boolean = config.testMode;

  const intent: PaymentIntentResult = await trpc.stripe.createPaymentIntent.mutate({
    orderId: "o1",
    amount: 2500,
    currency: "eur",
  });
  const secret: string = intent.clientSecret;
  const ephemeral: string | null | undefined = intent.ephemeralKey;

  await trpc.stripe.createPaymentIntent.mutate({
    orderId: "o2",
    amount: 1000,
    currency: "usd",
    description: "Two coffees",
    metadata: { table: "4" },
    customer: { email: "a@example.com", name: null },
  });

  const s = await trpc.stripe.getPaymentStatus.query({ orderId: "o1" });
  const status: string = s.status;
  const succeeded: boolean = s.status === "succeeded";
  const refunded: number = s.amountRefunded;
  const lastError: string | null = s.lastPaymentError;

  const canceled = await trpc.stripe.cancelPaymentIntent.mutate({ orderId: "o1" });
  const canceledStatus: Outputs["stripe"]["cancelPaymentIntent"]["status"] = canceled.status;

  const refundInput: Inputs["stripe"]["refund"] = { orderId: "o1", amount: 500, reason: "requested_by_customer" };
  const refund = await trpc.stripe.refund.mutate(refundInput);
  const remaining: number = refund.amountRemaining;
  await trpc.stripe.refund.mutate({ orderId: "o1", idempotencyKey: "k-1" });

  const pay = await trpc.stripe.checkNativePayAvailability.query({ domain: "shop.example.com" });
  const applePay: boolean = pay.applePay;

  try {
    await trpc.stripe.getPaymentStatus.query({ orderId: "missing" });
  } catch (error) {
    if (error instanceof TRPCClientError) {
      const code: string | undefined = (error as TRPCClientError<AppRouter>).data?.code;
      return code ?? "";
    }
  }
  return [key, testMode, secret, ephemeral, status, succeeded, refunded, lastError, canceledStatus, remaining, applePay].join();
}
