// Scenarios shared by the v10 and v11 client drivers (v10/client.mjs, v11/client.mjs).
//
// This file imports nothing from tRPC: each driver builds its own client with its own
// @trpc/client version and hands it to runDriver(). Calls go through the untyped proxy,
// e.g. client.greet.query({ name: 'Ann' }), which is the same in v10 and v11.
//
// Output: one JSON object on stdout, {"<scenario>": <result>, ...}, where <result> is
//   {"ok": true,  "data": <value>}
//   {"ok": false, "error": {"name", "message", "shapeCode", "code", "httpStatus", "path", "data"}}
// and values are encoded so their types survive JSON (see encode()).

/** Every TRPC_ERROR_CODE_KEY of @trpc/server 11.25.2 (wire reference, section 4.2). */
export const ERROR_CODES = [
  'PARSE_ERROR',
  'BAD_REQUEST',
  'INTERNAL_SERVER_ERROR',
  'NOT_IMPLEMENTED',
  'BAD_GATEWAY',
  'SERVICE_UNAVAILABLE',
  'GATEWAY_TIMEOUT',
  'UNAUTHORIZED',
  'PAYMENT_REQUIRED',
  'FORBIDDEN',
  'NOT_FOUND',
  'METHOD_NOT_SUPPORTED',
  'TIMEOUT',
  'CONFLICT',
  'PRECONDITION_FAILED',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'UNPROCESSABLE_CONTENT',
  'PRECONDITION_REQUIRED',
  'TOO_MANY_REQUESTS',
  'CLIENT_CLOSED_REQUEST',
];

export const SPECIAL_CHARS = 'a b&c=d/é,?%+ \u2603 "q" \\';
export const WHEN_AT = '2024-01-15T10:30:00.000Z';
export const BIG_NAME_LENGTH = 9000;

/**
 * Make a value JSON-safe without losing the JS types the tests care about:
 * Date -> {"$date": iso}, undefined -> {"$undefined": true}, bigint -> {"$bigint": "10"}.
 * (Also, never expected from this router: Map -> {"$map": [[k, v], ...]}, Set -> {"$set": [...]},
 * non-finite or -0 numbers -> {"$number": "NaN" | "Infinity" | "-Infinity" | "-0"}.)
 * Object keys whose value is undefined are kept, as {"$undefined": true}.
 */
export function encode(value) {
  if (value === undefined) return { $undefined: true };
  if (typeof value === 'bigint') return { $bigint: value.toString() };
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return { $number: 'NaN' };
    if (value === Infinity) return { $number: 'Infinity' };
    if (value === -Infinity) return { $number: '-Infinity' };
    if (Object.is(value, -0)) return { $number: '-0' };
    return value;
  }
  if (value instanceof Date) {
    return { $date: Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString() };
  }
  if (value instanceof Map) return { $map: [...value].map(([k, v]) => [encode(k), encode(v)]) };
  if (value instanceof Set) return { $set: [...value].map(encode) };
  if (Array.isArray(value)) return value.map(encode);
  if (value !== null && typeof value === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = encode(v);
    return out;
  }
  return value; // string, boolean, null
}

/** A rejected call, in the driver's error format (TRPCClientError fields, undefined kept). */
export function encodeError(e) {
  return encode({
    name: e?.name,
    message: e?.message,
    shapeCode: e?.shape?.code,
    code: e?.data?.code,
    httpStatus: e?.data?.httpStatus,
    path: e?.data?.path,
    data: e?.data,
  });
}

/** Await a promise and turn it into a result object; never rejects. */
export async function settle(promise) {
  try {
    return { ok: true, data: encode(await promise) };
  } catch (e) {
    return { ok: false, error: encodeError(e) };
  }
}

/** Several calls started in the same tick, awaited together; results in call order. */
async function settleAll(promises) {
  return Promise.all(promises.map(settle));
}

/** Scenario name -> async (client) => result. Each multi-call scenario fires its calls in one tick. */
export const SCENARIOS = {
  greetAnn: (c) => settle(c.greet.query({ name: 'Ann' })),
  greetNoInput: (c) => settle(c.greet.query()),
  noInput: (c) => settle(c.noInput.query()),
  nestedHi: (c) => settle(c.nested.deep.hi.query()),
  add: (c) => settle(c.add.mutate({ a: 1, b: 2 })),
  addInvalid: (c) => settle(c.add.mutate({ a: 'x' })),
  addMissing: (c) => settle(c.add.mutate({ a: 1 })),
  echoUndefined: (c) => settle(c.echoMut.mutate()),
  echoNull: (c) => settle(c.echoMut.mutate(null)),
  echoSpecialChars: (c) => settle(c.echoMut.mutate({ s: SPECIAL_CHARS })),
  unknownProcedure: (c) => settle(c.nope.query()),
  boom: (c) => settle(c.boom.query()),

  // data: {"<CODE>": <result>, ...} in ERROR_CODES order; all 21 calls fired in one tick
  // (so a batch link sends them as one batch, answered 207 by the reference server).
  throwCodes: async (c) => {
    const results = await settleAll(ERROR_CODES.map((code) => c.throwCode.query(code)));
    return { ok: true, data: Object.fromEntries(ERROR_CODES.map((code, i) => [code, results[i]])) };
  },

  whenDate: (c) => settle(c.when.query({ at: new Date(WHEN_AT) })),
  retUndefined: (c) => settle(c.retUndefined.query()),

  // data: [slow, noInput, boom] results in call order; settledOrder: the order they settled in
  // (with a streaming link the fast calls settle before the slow one).
  slowThenFast: async (c) => {
    const settledOrder = [];
    const track = (name, p) =>
      settle(p).then((r) => {
        settledOrder.push(name);
        return r;
      });
    const data = await Promise.all([
      track('slow', c.slow.query({ ms: 150 })),
      track('noInput', c.noInput.query()),
      track('boom', c.boom.query()),
    ]);
    return { ok: true, data, settledOrder };
  },

  // data: [greet, boom, nope, when-with-bad-input] results in call order (queries only: one batch).
  mixedBatch: async (c) => ({
    ok: true,
    data: await settleAll([
      c.greet.query({ name: 'Mix' }),
      c.boom.query(),
      c.nope.query(),
      c.when.query({ at: 'not a date' }),
    ]),
  }),

  // A GET whose URL is > 8 KB (no maxURLLength is set on the links).
  bigInput: (c) => settle(c.greet.query({ name: 'x'.repeat(BIG_NAME_LENGTH) })),

  // data: [5 x noInput, 3 x add] results in call order. The queries are fired in one tick and
  // the mutations in one tick: batch links send 2 requests, httpLink sends 8.
  concurrent: async (c) => {
    const queries = [0, 1, 2, 3, 4].map(() => c.noInput.query());
    const mutations = [0, 1, 2].map((i) => c.add.mutate({ a: i, b: 10 }));
    return { ok: true, data: await settleAll([...queries, ...mutations]) };
  },
};

const TIMEOUT_MS = Number(process.env.DRIVER_SCENARIO_TIMEOUT_MS ?? 15000);

/** Run one scenario; a scenario that hangs gives an error result instead of hanging the driver. */
async function runScenario(name, client) {
  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(
      () =>
        resolve({
          ok: false,
          error: encodeError({ name: 'DriverTimeout', message: `scenario ${name} timed out after ${TIMEOUT_MS} ms` }),
        }),
      TIMEOUT_MS,
    );
  });
  try {
    return await Promise.race([SCENARIOS[name](client), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Shared main(): parse argv, build the client with makeClient(baseUrl, link, transformer),
 * run the scenarios, print one JSON object, exit 0.
 */
export async function runDriver({ links, makeClient }) {
  const [baseUrl, link, transformer, only] = process.argv.slice(2);
  const usage = `usage: node client.mjs <baseUrl> <${links.join('|')}> <none|superjson> [${Object.keys(SCENARIOS).join('|')}]`;
  if (!baseUrl || !links.includes(link) || !['none', 'superjson'].includes(transformer)) {
    console.error(usage);
    process.exit(2);
  }
  if (only !== undefined && !(only in SCENARIOS)) {
    console.error(`unknown scenario ${JSON.stringify(only)}\n${usage}`);
    process.exit(2);
  }
  const client = await makeClient(baseUrl, link, transformer);
  const out = {};
  for (const name of only !== undefined ? [only] : Object.keys(SCENARIOS)) {
    out[name] = await runScenario(name, client);
  }
  // Exit explicitly: a timed-out call may still hold a socket open.
  process.stdout.write(JSON.stringify(out) + '\n', () => process.exit(0));
}
