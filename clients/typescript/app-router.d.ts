// The gateway's tRPC router as a TypeScript type, for `createTRPCClient<AppRouter>` (@trpc/client v11).
// Generated from the procedure registry by `gateway schema typescript`: do not edit by hand.
// Types only: importing this file adds nothing to the app's bundle (use `import type`).

import type {
  TRPCBuiltRouter,
  TRPCDefaultErrorShape,
  TRPCMutationProcedure,
  TRPCQueryProcedure,
} from "@trpc/server";

export interface CancelPaymentIntentInput {
  /**
   * The app's own order id: printable text, 1-200 characters
   * @minLength 1
   * @maxLength 200
   * @pattern ^(?=[\s\S]*\S)[^\x00-\x1f\x7f-\x9f]+$
   */
  orderId: string;
  clientSecret?: string | null;
}

export interface CancelPaymentIntentResult {
  orderId: string;
  status: "canceled" | "creating" | "processing" | "requires_action" | "requires_capture" | "requires_confirmation" | "requires_payment_method" | "succeeded";
}

export interface CreatePaymentIntentInput {
  /**
   * The app's own order id: printable text, 1-200 characters
   * @minLength 1
   * @maxLength 200
   * @pattern ^(?=[\s\S]*\S)[^\x00-\x1f\x7f-\x9f]+$
   */
  orderId: string;
  /**
   * Amount in the currency's minor unit (e.g. cents), at most 8 digits
   * @minimum 1
   * @maximum 99999999
   */
  amount: number;
  /**
   * ISO 4217 currency code, e.g. `eur` (any letter case)
   * @pattern ^[A-Za-z]{3}$
   */
  currency: string;
  description?: string | null;
  metadata?: Record<string, string> | null;
  customer?: CustomerInput | null;
  clientSecret?: string | null;
}

/**
 * The buyer, when the PaymentSheet should offer their saved cards: a Stripe Customer is created once per e-mail address and reused.
 */
export interface CustomerInput {
  /**
   * @maxLength 254
   * @pattern ^[^@\s]+@[^@\s]+\.[^@\s]+$
   */
  email: string;
  name?: string | null;
  phone?: string | null;
}

/**
 * Whether Apple Pay / Google Pay are registered and active for a web domain at Stripe.
 */
export interface NativePayAvailability {
  applePay: boolean;
  googlePay: boolean;
}

export interface NativePayInput {
  /**
   * A host name such as `shop.example.com` (internationalised names in their xn-- form)
   * @maxLength 253
   * @pattern ^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))+$
   */
  domain: string;
}

export interface OrderInput {
  /**
   * The app's own order id: printable text, 1-200 characters
   * @minLength 1
   * @maxLength 200
   * @pattern ^(?=[\s\S]*\S)[^\x00-\x1f\x7f-\x9f]+$
   */
  orderId: string;
  clientSecret?: string | null;
}

/**
 * What `initPaymentSheet` needs. The same order, amount and currency always give the same PaymentIntent.
 */
export interface PaymentIntentResult {
  orderId: string;
  paymentIntentId: string;
  clientSecret: string;
  amount: number;
  currency: string;
  status: "canceled" | "creating" | "processing" | "requires_action" | "requires_capture" | "requires_confirmation" | "requires_payment_method" | "succeeded";
  publishableKey: string;
  customerId?: string | null;
  ephemeralKey?: string | null;
}

/**
 * Proof of a paid order, to show at a counter or a door: staff scan it (`verifyPaymentQrCode`).
 */
export interface PaymentQrCode {
  orderId: string;
  token: string;
  svg: string;
}

export interface PaymentQrCodeInput {
  /**
   * The app's own order id: printable text, 1-200 characters
   * @minLength 1
   * @maxLength 200
   * @pattern ^(?=[\s\S]*\S)[^\x00-\x1f\x7f-\x9f]+$
   */
  orderId: string;
  clientSecret?: string | null;
}

export interface PaymentStatusResult {
  orderId: string;
  status: "canceled" | "creating" | "processing" | "requires_action" | "requires_capture" | "requires_confirmation" | "requires_payment_method" | "succeeded";
  amount: number;
  currency: string;
  amountReceived: number;
  amountRefunded: number;
  refundStatus: "full" | "none" | "partial";
  paymentIntentId: string | null;
  lastPaymentError: string | null;
  updatedAt: string;
}

/**
 * Whether a scanned QR code proves a payment now, and if not, why.
 */
export interface QrVerification {
  valid: boolean;
  reason?: "already_used" | "bad_signature" | "malformed" | "not_paid" | "refunded" | "unknown_key" | "unknown_order" | null;
  orderId?: string | null;
  amount?: number | null;
  currency?: string | null;
  amountRefunded?: number | null;
  redeemedAt?: string | null;
}

export interface RefundInput {
  /**
   * The app's own order id: printable text, 1-200 characters
   * @minLength 1
   * @maxLength 200
   * @pattern ^(?=[\s\S]*\S)[^\x00-\x1f\x7f-\x9f]+$
   */
  orderId: string;
  amount?: number | null;
  reason?: "duplicate" | "fraudulent" | "requested_by_customer" | null;
  idempotencyKey?: string | null;
}

export interface RefundResult {
  refundId: string;
  orderId: string;
  amount: number;
  currency: string;
  status: string;
  amountRefunded: number;
  amountRemaining: number;
}

/**
 * What the app needs to initialise the Stripe SDK and the PaymentSheet.
 */
export interface StripeConfig {
  publishableKey: string;
  merchantDisplayName: string;
  merchantCountryCode: string;
  testMode: boolean;
}

export interface VerifyPaymentQrCodeInput {
  /**
   * The scanned QR code's text
   * @minLength 1
   * @maxLength 4096
   */
  token: string;
}

/** The gateway's root types: no context or meta visible to clients, tRPC's default error shape, plain JSON (no transformer). */
export interface AppRouterRoot {
  ctx: object;
  meta: object;
  errorShape: TRPCDefaultErrorShape;
  transformer: false;
}

/** The procedures by path, as `t.router({...})` would record them. */
export type AppRouterRecord = {
  stripe: {
    /**
     * The publishable key, merchant display name, country and test mode the app initialises Stripe with. Answered from settings alone, so a plain function (no task in a batch).
     */
    getConfig: TRPCQueryProcedure<{ input: void; output: StripeConfig; meta: object; errorShape: TRPCDefaultErrorShape }>;
    /**
     * Create the order's PaymentIntent, or return the one it has: the same order, amount and currency always give the same PaymentIntent and client secret. A changed amount updates the unpaid intent; a paid order is a CONFLICT. With `customer`, a Stripe Customer is created or reused and an ephemeral key returned. SERVICE_UNAVAILABLE while maintenance is on.
     */
    createPaymentIntent: TRPCMutationProcedure<{ input: CreatePaymentIntentInput; output: PaymentIntentResult; meta: object; errorShape: TRPCDefaultErrorShape }>;
    /**
     * The order's payment status, amounts and refunded total, as the gateway knows them (kept current by Stripe's webhooks; checked with Stripe while the payment is not final).
     */
    getPaymentStatus: TRPCQueryProcedure<{ input: OrderInput; output: PaymentStatusResult; meta: object; errorShape: TRPCDefaultErrorShape }>;
    /**
     * Cancel the order's unpaid PaymentIntent (idempotent: canceling twice answers `canceled`). A paid order is refunded, not canceled (CONFLICT). SERVICE_UNAVAILABLE while maintenance is on.
     */
    cancelPaymentIntent: TRPCMutationProcedure<{ input: CancelPaymentIntentInput; output: CancelPaymentIntentResult; meta: object; errorShape: TRPCDefaultErrorShape }>;
    /**
     * Admin only. Refund a paid order: everything left without `amount`, else `amount` (at most what is left). With `idempotencyKey`, a retried request never refunds twice. SERVICE_UNAVAILABLE while maintenance is on (`gateway refund` still works).
     */
    refund: TRPCMutationProcedure<{ input: RefundInput; output: RefundResult; meta: object; errorShape: TRPCDefaultErrorShape }>;
    /**
     * Whether Apple Pay and Google Pay are enabled and active for a web domain at Stripe (cached; when Stripe cannot be reached, the last known answer).
     */
    checkNativePayAvailability: TRPCQueryProcedure<{ input: NativePayInput; output: NativePayAvailability; meta: object; errorShape: TRPCDefaultErrorShape }>;
    /**
     * A paid order's QR code (a signed token naming the order, and its SVG image), for the order's owner (a guest: with the client secret). NOT_FOUND for an order the caller may not reach; CONFLICT while it is not paid or once it is fully refunded; PRECONDITION_FAILED when the gateway has no QR_SECRET.
     */
    getPaymentQrCode: TRPCQueryProcedure<{ input: PaymentQrCodeInput; output: PaymentQrCode; meta: object; errorShape: TRPCDefaultErrorShape }>;
    /**
     * Staff only. Whether a scanned QR code proves a payment now: a genuine signature, the order paid and not fully refunded, and with single use on, not scanned before (this scan is then recorded). A refusal is an answer with `valid: false` and the reason, not an error.
     */
    verifyPaymentQrCode: TRPCMutationProcedure<{ input: VerifyPaymentQrCodeInput; output: QrVerification; meta: object; errorShape: TRPCDefaultErrorShape }>;
  };
};

/** The router type for `createTRPCClient<AppRouter>(...)`. */
export type AppRouter = TRPCBuiltRouter<AppRouterRoot, AppRouterRecord>;
