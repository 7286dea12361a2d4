// Real @trpc/client 11.25.2 driver: node client.mjs <baseUrl> <link> <none|superjson> [scenario]
// Scenarios and the output format are in ../scenarios.mjs (shared with the v10 driver).
import { createTRPCClient, httpLink, httpBatchLink, httpBatchStreamLink } from '@trpc/client';
import superjson from 'superjson';
import { runDriver } from '../scenarios.mjs';

const LINKS = { httpLink, httpBatchLink, httpBatchStreamLink };

await runDriver({
  links: Object.keys(LINKS),
  // v11: the transformer is set on the terminating link. No maxURLLength: long GETs are sent as is.
  makeClient: (url, link, transformer) =>
    createTRPCClient({
      links: [LINKS[link]({ url, ...(transformer === 'superjson' ? { transformer: superjson } : {}) })],
    }),
});
