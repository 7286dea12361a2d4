// The conformance test router, shared by v11/reference-server.mjs (@trpc/server 11) and
// v10/reference-server.mjs (@trpc/server 10). The Python gateway implements the same procedures.
//
// It imports nothing itself: each server passes its own tRPC instance `t`, `TRPCError` and zod `z`
// (the packages live in v10/node_modules and v11/node_modules).

const DAY_MS = 86_400_000;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function buildRouter({ t, TRPCError, z }) {
  return t.router({
    // input optional {name?: string}; the whole input may be undefined
    greet: t.procedure
      .input(z.object({ name: z.string().optional() }).optional())
      .query(({ input }) => ({ hello: input?.name ?? 'world' })),

    noInput: t.procedure.query(() => 'pong'),

    add: t.procedure
      .input(z.object({ a: z.number().int(), b: z.number().int() }))
      .mutation(({ input }) => input.a + input.b),

    echoMut: t.procedure
      .input(z.unknown())
      .mutation(({ input }) => ({ received: input ?? null, wasUndefined: input === undefined })),

    boom: t.procedure.query(() => {
      throw new Error('kaboom');
    }),

    throwCode: t.procedure.input(z.string()).query(({ input }) => {
      throw new TRPCError({ code: input, message: 'thrown ' + input });
    }),

    slow: t.procedure.input(z.object({ ms: z.number().int() })).query(async ({ input }) => {
      await sleep(input.ms);
      return { waited: input.ms };
    }),

    // z.coerce.date(): a superjson Date and a plain JSON ISO string both work
    when: t.procedure
      .input(z.object({ at: z.coerce.date() }))
      .query(({ input }) => ({ at: input.at, nextDay: new Date(input.at.getTime() + DAY_MS) })),

    retUndefined: t.procedure.query(() => undefined),

    nested: t.router({
      deep: t.router({
        hi: t.procedure.query(() => 'hi'),
      }),
    }),
  });
}

/** argv for both servers: <port> <none|superjson>. */
export function parseServerArgs(name) {
  const [portArg, transformer] = process.argv.slice(2);
  if (portArg === undefined || !/^\d+$/.test(portArg) || !['none', 'superjson'].includes(transformer)) {
    console.error(`usage: node ${name} <port> <none|superjson>`);
    process.exit(2);
  }
  return { port: Number(portArg), transformer };
}

/** Listen on 127.0.0.1, print "listening <port>", exit 0 on SIGTERM/SIGINT. */
export function serve(server, port) {
  server.listen(port, '127.0.0.1', () => {
    console.log(`listening ${server.address().port}`);
  });
  const shutdown = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}
