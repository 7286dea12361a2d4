// A real @trpc/server 11.25.2 standalone server with the conformance test router (../router.mjs).
//
//   node reference-server.mjs <port> <none|superjson>
//
// Listens on 127.0.0.1:<port> under /trpc/ (port 0 picks a free port), prints
// "listening <actual port>" once ready, exits 0 on SIGTERM or SIGINT.
//
// isDev is false (as in production): error envelopes carry no data.stack, so they can be
// compared field by field with the Python gateway's.
import { initTRPC, TRPCError } from '@trpc/server';
import { createHTTPServer } from '@trpc/server/adapters/standalone';
import superjson from 'superjson';
import { z } from 'zod';
import { buildRouter, parseServerArgs, serve } from '../router.mjs';

const { port, transformer } = parseServerArgs('reference-server.mjs');

const t = initTRPC.create({
  isDev: false,
  ...(transformer === 'superjson' ? { transformer: superjson } : {}),
});

const server = createHTTPServer({
  router: buildRouter({ t, TRPCError, z }),
  basePath: '/trpc/',
  createContext: () => ({}),
});

serve(server, port);
