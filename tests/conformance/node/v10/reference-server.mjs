// A real @trpc/server 10.45.4 standalone server with the conformance test router (../router.mjs).
// Not the main reference (that is ../v11/reference-server.mjs): it exists because only a v10
// server speaks the v10 streaming format that `unstable_httpBatchStreamLink` expects
// (`trpc-batch-mode: stream`, wire reference 5.5), so it is the oracle for that link.
//
//   node reference-server.mjs <port> <none|superjson>
//
// Listens on 127.0.0.1:<port> under /trpc/ (port 0 picks a free port), prints
// "listening <actual port>" once ready, exits 0 on SIGTERM or SIGINT. isDev is false.
// Unlike v11 it knows only 15 error codes: throwCode with a v11-only code gives an error
// shape without a numeric code (see ../README.md).
import http from 'node:http';
import { initTRPC, TRPCError } from '@trpc/server';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import superjson from 'superjson';
import { z } from 'zod';
import { buildRouter, parseServerArgs, serve } from '../router.mjs';

const { port, transformer } = parseServerArgs('reference-server.mjs');

const t = initTRPC.create({
  isDev: false,
  ...(transformer === 'superjson' ? { transformer: superjson } : {}),
});

const handler = createHTTPHandler({
  router: buildRouter({ t, TRPCError, z }),
  createContext: () => ({}),
});

// v10's standalone adapter has no basePath option: strip the /trpc prefix here.
const PREFIX = '/trpc';
const server = http.createServer((req, res) => {
  if (req.url === PREFIX || req.url.startsWith(PREFIX + '/') || req.url.startsWith(PREFIX + '?')) {
    req.url = req.url.slice(PREFIX.length) || '/';
    if (!req.url.startsWith('/')) req.url = '/' + req.url;
    return handler(req, res);
  }
  res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
});

serve(server, port);
