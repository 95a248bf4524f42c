// Drives the tickdesk protocol from Node.js with the npm `ws` package.
// Usage: node protocol_client.js WS_URL   (NODE_PATH must find `ws`)
// Prints one JSON object (what it saw) on stdout; exits 0 when every step
// passed, 1 otherwise (the object then says which step failed).
'use strict';

const WebSocket = require('ws');

const url = process.argv[2];
const report = { steps: [] };
const inbox = [];
let waiter = null;

function finish(code) {
  process.stdout.write(JSON.stringify(report) + '\n');
  process.exit(code);
}

// Resolve with the first message (already received or future) matching pred.
function waitFor(pred, what, ms = 10000) {
  return new Promise((resolve, reject) => {
    const i = inbox.findIndex(pred);
    if (i >= 0) {
      resolve(inbox.splice(i, 1)[0]);
      return;
    }
    const timer = setTimeout(() => {
      waiter = null;
      reject(new Error('timed out waiting for ' + what));
    }, ms);
    waiter = (msg) => {
      if (!pred(msg)) return false;
      clearTimeout(timer);
      waiter = null;
      resolve(msg);
      return true;
    };
  });
}

const ws = new WebSocket(url); // offers permessage-deflate by default

ws.on('message', (data, isBinary) => {
  const msg = JSON.parse(data.toString('utf8'));
  if (!(waiter && waiter(msg))) inbox.push(msg);
});
ws.on('error', (err) => {
  report.error = String(err && err.message);
  finish(1);
});

async function run() {
  await new Promise((resolve) => ws.once('open', resolve));
  report.extensions = ws.extensions; // '' when the server declined permessage-deflate
  const hello = await waitFor((m) => m.type === 'CONNECTED', 'CONNECTED');
  report.connected = hello;
  report.steps.push('connected');

  ws.send(JSON.stringify({ action: 'subscribe_ticker', symbol: 'btcusdt', id: 's1' }));
  report.subscribed = await waitFor((m) => m.id === 's1', 'SUBSCRIBED');
  report.marketUpdates = [];
  while (report.marketUpdates.length < 2) {
    report.marketUpdates.push(
      await waitFor((m) => m.type === 'MARKET_UPDATE', 'MARKET_UPDATE'));
  }
  report.steps.push('market');

  ws.send(JSON.stringify({ action: 'place_order', symbol: 'BTCUSDT', side: 'BUY',
                           type: 'MARKET', quantity: 0.01, id: 42 }));
  report.orderNew = await waitFor((m) => m.id === 42 && m.type === 'ORDER_UPDATE', 'NEW');
  report.orderTrade = await waitFor(
    (m) => m.type === 'ORDER_UPDATE' && m.executionType === 'TRADE', 'TRADE');
  report.steps.push('order');

  ws.send('this is not json');
  report.badFrameError = await waitFor((m) => m.type === 'ERROR', 'ERROR');
  ws.send(JSON.stringify({ action: 'ping', id: 'after-error' }));
  report.pongAfterError = await waitFor((m) => m.id === 'after-error', 'PONG');
  report.steps.push('error');

  ws.close(1000, 'done');
  report.closeCode = await new Promise((resolve) => ws.once('close', (code) => resolve(code)));
  report.steps.push('closed');
}

const deadline = setTimeout(() => {
  report.error = 'overall timeout';
  finish(1);
}, 30000);

run().then(() => {
  clearTimeout(deadline);
  finish(0);
}, (err) => {
  report.error = String(err && err.message);
  finish(1);
});
