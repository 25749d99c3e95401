#!/usr/bin/env node
// Starts the independent push-service emulator (npm web-push-testing) on
// 127.0.0.1 only. Its own CLI listens on every interface and keeps a pid file
// in the working directory, so tests start its server class here instead.
//
// Usage: node push-emulator.js [--port N]   (default 0: any free port)
// Prints one JSON line {"port":N,"notify":"http://127.0.0.1:N/notify/"} once
// it accepts connections, then runs until killed.
'use strict';
const path = require('node:path');
const pkg = path.join(__dirname, 'node_modules', 'web-push-testing', 'src');
const WebPushTestingServer = require(path.join(pkg, 'server.js'));
const { PushApiModel } = require(path.join(pkg, 'PushApiModel.js'));

const portArg = process.argv.indexOf('--port');
const port = portArg > 0 ? Number(process.argv[portArg + 1]) : 0;

const model = new PushApiModel();
const server = new WebPushTestingServer(model, port);
server.setRequestHandlers();
const listener = server._app.listen(port, '127.0.0.1', () => {
  const actual = listener.address().port;
  // The model builds endpoints from notifyUrl; point it at the bound address.
  model.notifyUrl = `http://127.0.0.1:${actual}/notify/`;
  process.stdout.write(JSON.stringify({ port: actual, notify: model.notifyUrl }) + '\n');
});
listener.on('error', (err) => {
  process.stderr.write(`push-emulator: ${err.message}\n`);
  process.exit(1);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => listener.close(() => process.exit(0)));
