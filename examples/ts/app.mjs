// Serve the example functions on http://127.0.0.1:$PORT/api/inngest (default 3000) with the
// SDK's Node adapter; sync that URL with headrace (`headrace dev -u ...`, or scripts/demo-ts).
import http from "node:http";

import { serve } from "inngest/node";

import { functions, inngest } from "./functions.mjs";

const port = Number(process.env.PORT || 3000);
const origin = `http://127.0.0.1:${port}`;
const handler = serve({ client: inngest, functions, serveOrigin: origin });

const server = http.createServer((req, res) => {
  if (req.url.startsWith("/api/inngest")) return handler(req, res);
  res.statusCode = 404;
  res.end();
});
server.listen(port, "127.0.0.1", () => {
  console.log(`listening on ${origin}/api/inngest`);
});
const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
