// The peer of the gateway benchmark: @trpc/server 11.25.2's standalone adapter with zod inputs, serving the
// same routes as bench/gateway_app.py and bench/bare_app.py under /trpc/.
//
//   node server.mjs <port>
//
// Listens on 127.0.0.1:<port> (0 picks a free port), prints "listening <actual port>" once ready, exits 0 on
// SIGTERM or SIGINT. isDev is false, as in production. Batching is on (the v11 default).
import { initTRPC } from '@trpc/server';
import { createHTTPServer } from '@trpc/server/adapters/standalone';
import { z } from 'zod';

const portArg = process.argv[2];
if (portArg === undefined || !/^\d+$/.test(portArg)) {
  console.error('usage: node server.mjs <port>');
  process.exit(2);
}

const t = initTRPC.create({ isDev: false });

const appRouter = t.router({
  bench: t.router({
    greet: t.procedure
      .input(z.object({ name: z.string() }))
      .query(({ input }) => ({ hello: input.name })),
    add: t.procedure
      .input(z.object({ a: z.number().int(), b: z.number().int() }))
      .mutation(({ input }) => input.a + input.b),
  }),
});

const server = createHTTPServer({
  router: appRouter,
  basePath: '/trpc/',
  createContext: () => ({}),
});

server.listen(Number(portArg), '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});

const shutdown = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
