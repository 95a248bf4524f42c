// tickdesk dashboard: a plain-JavaScript client of the real-time protocol
// (docs/protocol.md). No build step. See docs/dashboard.md. This file owns the
// connection (its own section below: connect, reconnect, send), the watch list, the
// account panels and the order ticket; desk.js draws the chart, book, tape, fills and
// equity through the hooks this file calls (`desk.*`).
"use strict";

(() => {
  // -- settings ---------------------------------------------------------------
  const STALE_MS = 3000;            // no data for this long: PARTIAL
  const BACKOFF_MIN_MS = 500;       // reconnect: 0.5 s doubling to 30 s, ±20 % jitter
  const BACKOFF_MAX_MS = 30000;
  const BACKOFF_FACTOR = 2;
  const BACKOFF_JITTER = 0.2;
  const CONNECT_TIMEOUT_MS = 10000; // a handshake that takes longer is abandoned
  const PING_EVERY_MS = 5000;       // ping/PONG: round trip and liveness
  const DEAD_AFTER_MS = 15000;      // nothing at all received for this long: reconnect
  const TICK_MS = 250;              // the indicator's refresh
  const SPARK_POINTS = 90;
  const SPARK_EVERY_MS = 500;       // sparklines are redrawn at most twice a second
  const MAX_ACTIVITY = 200;
  const MAX_ORDERS_SHOWN = 200;
  const MAX_ORDERS_KEPT = 1000;
  const MAX_PENDING = 300;
  const TOKEN_KEY = "tickdesk.token";
  const WATCH_KEY = "tickdesk.watch";
  const SYMBOL_RULE = symbolRule();
  const OPEN_STATUSES = new Set(["PENDING_NEW", "NEW", "PARTIALLY_FILLED"]);
  const LIMIT_LEGS = ["LIMIT_MAKER", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"];
  const STOP_LEGS = ["STOP_LOSS", "STOP_LOSS_LIMIT"];
  const PRICED = new Set(["LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"]);
  const STOPS = new Set(["STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT",
    "TRAILING_STOP"]);

  const $ = (id) => document.getElementById(id);

  // The daemon writes its symbol rule into the page (engine/protocol/symbols.py), so the
  // page never keeps a copy; without it, any non-blank text goes to the server to judge.
  function symbolRule() {
    const meta = document.querySelector('meta[name="tickdesk-symbol-pattern"]');
    const pattern = meta ? meta.content : "";
    try {
      if (pattern) return { pattern, re: new RegExp(`^(?:${pattern})$`) };
    } catch (_) { /* fall through */ }
    return { pattern: "not blank", re: /^\S+$/ };
  }

  // -- state ------------------------------------------------------------------
  const state = {
    ws: null,            // the current socket (connecting or open), or null
    live: false,         // CONNECTED received on the current socket
    everConnected: false,
    server: null,
    account: null,
    authNeeded: false,
    pendingToken: null,
    feed: null,          // the latest FEED_STATUS (or CONNECTED.feed)
    lastDataAt: 0,       // Date.now() of the last data message (market/account)
    lastMsgAt: 0,        // Date.now() of the last message of any kind
    rttMs: null,
    attempt: 0,          // failed attempts since the last CONNECTED
    retryAt: 0,
    retryTimer: null,
    connectTimer: null,
    pingTimer: null,
    epoch: null,         // CONNECTED.epoch: the account events' history
    seq: 0,              // the seq of the last order event shown
    resumeEpoch: null,   // the previous connection's epoch, until resumed
    session: null,       // CONNECTED.session: what resume restores the subscriptions from
    resumeSession: null, // the previous connection's session, until resumed
    nextId: 1,
    pending: new Map(),  // request id -> {kind, ...}
    pings: new Map(),    // ping id -> performance.now()
    watch: new Map(),    // symbol -> {row, cells, history, last}
    orders: new Map(),   // orderId -> order (plus listType)
    positions: [],
    refreshTimer: null,
    served: [],          // the feed's symbols (SYMBOLS), offered when adding one
    seedWatch: false,    // nothing remembered: the watch list starts from SYMBOLS
  };
  let desk = null;       // the hooks of desk.js (chart, book, tape, fills, equity)

  // -- small helpers ----------------------------------------------------------
  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === undefined || v === null) continue;
        if (k === "class") node.className = v;
        else if (k === "text") node.textContent = v;
        else if (k === "dataset") Object.assign(node.dataset, v);
        else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
        else node.setAttribute(k, v);
      }
    }
    for (const c of children) {
      if (c !== null && c !== undefined) node.append(c);
    }
    return node;
  }

  function decimalsOf(v) {
    const s = String(Math.abs(v));
    if (s.includes("e")) return 8;
    const dot = s.indexOf(".");
    return dot < 0 ? 0 : s.length - dot - 1;
  }

  // One Intl.NumberFormat per format, made once: toLocaleString() builds a new one on
  // every call, which costs far more than the formatting (50 symbols streaming).
  const PRICE_FORMATS = [];
  for (let d = 0; d <= 8; d++) {
    PRICE_FORMATS.push(new Intl.NumberFormat("en-US",
      { minimumFractionDigits: d, maximumFractionDigits: d }));
  }
  const QTY_FORMAT = new Intl.NumberFormat("en-US", { maximumFractionDigits: 8 });
  const MONEY_FORMAT = PRICE_FORMATS[2];
  const TIME_FORMAT = new Intl.DateTimeFormat("en-GB", {
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });

  function fmtPrice(v) {
    if (v === null || v === undefined) return "—";
    return PRICE_FORMATS[Math.min(8, Math.max(2, decimalsOf(v)))].format(v);
  }

  function fmtQty(v) {
    if (v === null || v === undefined) return "—";
    return QTY_FORMAT.format(v);
  }

  function fmtMoney(v, signed) {
    if (v === null || v === undefined) return "—";
    const s = MONEY_FORMAT.format(Math.abs(v));
    if (v < 0) return "−" + s;
    return signed && v > 0 ? "+" + s : s;
  }

  function fmtPct(v) {
    if (v === null || v === undefined) return "—";
    const s = Math.abs(v).toFixed(2) + " %";
    return v > 0 ? "+" + s : v < 0 ? "−" + s : s;
  }

  function fmtTime(ms) {
    if (!ms) return "—";
    return TIME_FORMAT.format(ms);
  }

  function signClass(v) {
    return v > 0 ? "up" : v < 0 ? "down" : "flat";
  }

  function setSigned(node, v, text) {
    node.textContent = text;
    node.classList.remove("up", "down", "flat");
    if (v !== null && v !== undefined) node.classList.add(signClass(v));
  }

  // -- notices and the activity log ----------------------------------------------
  let noticeTimer = null;
  function notice(text) {
    const box = $("notice");
    box.textContent = text;
    box.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { box.hidden = true; }, 8000);
  }

  function activity(kind, text, cls) {
    const list = $("activity");
    const item = h("li", { class: cls || "" },
      h("time", { text: fmtTime(Date.now()) }),
      h("span", { class: "tag", text: kind }),
      h("span", { class: "msg", text }));
    list.prepend(item);
    while (list.childElementCount > MAX_ACTIVITY) list.lastElementChild.remove();
  }

  // -- the connection ---------------------------------------------------------
  function wsUrl() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    return `${proto}//${location.host}/api/ws/realtime`;
  }

  function backoffDelay(attempt) {
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(BACKOFF_FACTOR, attempt));
    const jittered = base * (1 + BACKOFF_JITTER * (2 * Math.random() - 1));
    return Math.round(Math.min(BACKOFF_MAX_MS, jittered));
  }

  function connect() {
    clearTimeout(state.retryTimer);
    state.retryTimer = null;
    state.retryAt = 0;
    let ws;
    try {
      ws = new WebSocket(wsUrl());
    } catch (err) {
      activity("ERROR", `cannot open the WebSocket: ${err.message}`, "bad");
      scheduleReconnect();
      return;
    }
    state.ws = ws;
    state.connectTimer = setTimeout(() => {
      if (state.ws === ws && !state.live) dropSocket("the handshake timed out");
    }, CONNECT_TIMEOUT_MS);
    ws.onmessage = (ev) => { if (state.ws === ws) onMessage(ev.data); };
    ws.onclose = (ev) => {
      if (state.ws === ws) onDisconnected(ev.code ? `code ${ev.code}` : "");
    };
    ws.onerror = () => { /* onclose follows */ };
    render();
  }

  /** Give up on the current socket now (no waiting for a closing handshake). */
  function dropSocket(reason) {
    const ws = state.ws;
    if (!ws) return;
    onDisconnected(reason);
    try { ws.close(4000, "client gave up"); } catch (_) { /* already closed */ }
  }

  function onDisconnected(reason) {
    const wasLive = state.live;
    state.ws = null;
    state.live = false;
    clearTimeout(state.connectTimer);
    clearInterval(state.pingTimer);
    state.pings.clear();
    state.rttMs = null;
    for (const [id, p] of state.pending) {
      if (p.onLost) p.onLost();
      if (p.kind === "ticket" && !p.done) {
        ticketResult("error", "Connection lost before the server answered: check the " +
          "orders table once reconnected.");
      }
      state.pending.delete(id);
    }
    if (wasLive) activity("DISCONNECTED", `connection lost${reason ? " (" + reason + ")" : ""}`, "bad");
    scheduleReconnect();
    render();
  }

  function scheduleReconnect() {
    const delay = backoffDelay(state.attempt);
    state.attempt += 1;
    state.retryAt = Date.now() + delay;
    clearTimeout(state.retryTimer);
    state.retryTimer = setTimeout(connect, delay);
  }

  function send(obj, pending) {
    const ws = state.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return null;
    const id = "c" + state.nextId++;
    if (pending) {
      state.pending.set(id, pending);
      if (state.pending.size > MAX_PENDING) {
        state.pending.delete(state.pending.keys().next().value);
      }
    }
    ws.send(JSON.stringify({ ...obj, id }));
    return id;
  }

  function ping() {
    const id = send({ action: "ping" });
    if (id) state.pings.set(id, performance.now());
  }

  function requestAccountState() {
    fetchState({ action: "get_positions" });
    fetchState({ action: "get_portfolio" });
    fetchState({ action: "get_orders", status: "all" });
    if (desk) desk.onAccount();
  }

  /** A get_* request that is retried (1, 2, 3 s later) if the server answers INTERNAL
   * or RATE_LIMITED, e.g. while an engine that has just started is still starting. */
  function fetchState(cmd, tries = 0) {
    send(cmd, { kind: "fetch", cmd, tries });
  }

  /** After a fill: fetch positions and portfolio now rather than at the next broadcast. */
  function refreshSoon() {
    if (state.refreshTimer) return;
    state.refreshTimer = setTimeout(() => {
      state.refreshTimer = null;
      if (state.account) {
        send({ action: "get_positions" });
        send({ action: "get_portfolio" });
      }
    }, 50);
  }

  // -- incoming messages ---------------------------------------------------------
  function onMessage(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch (_) {
      return;
    }
    const now = Date.now();
    state.lastMsgAt = now;
    const pending = msg.id !== undefined ? state.pending.get(msg.id) : undefined;
    if (typeof msg.seq === "number" && (msg.type === "ORDER_UPDATE" || msg.type === "ORDER_LIST_UPDATE")) {
      if (msg.seq <= state.seq) return; // seen already (live and resumed around a reconnect)
      state.seq = msg.seq;
    }
    switch (msg.type) {
      case "CONNECTED": onConnected(msg); break;
      case "RESUMED":
        if (pending) state.pending.delete(msg.id);
        if (state.account) {
          if (!msg.recovered) state.seq = 0; // a new history; the re-fetch has the state
          activity("RESUMED", msg.recovered ? "missed order events recovered"
            : "order history not recoverable; orders re-fetched", msg.recovered ? "good" : "bad");
        }
        if (msg.restored !== undefined) onRestored(msg);
        break;
      case "AUTHENTICATED": onAuthenticated(msg); break;
      case "PONG": {
        const t0 = state.pings.get(msg.id);
        if (t0 !== undefined) {
          state.rttMs = performance.now() - t0;
          state.pings.delete(msg.id);
        }
        break;
      }
      case "FEED_STATUS": onFeedStatus(msg); break;
      case "MARKET_UPDATE":       // streaming: drawn in the next frame, no render() here
        state.lastDataAt = now;
        onMarket(msg);
        if (desk) desk.onMarket(msg);
        return;
      case "BOOK_UPDATE":
        if (desk) desk.onBook(msg);
        return;
      case "SYMBOLS": onSymbols(msg); break;
      case "POSITION_UPDATE":
        state.lastDataAt = now;
        state.positions = msg.positions || [];
        renderPositions();
        break;
      case "PORTFOLIO_UPDATE":
        state.lastDataAt = now;
        renderPortfolio(msg.portfolio);
        if (desk) desk.onPortfolio(msg.portfolio, msg.timestamp);
        break;
      case "ORDERS":
        state.orders.clear();
        for (const o of msg.orders || []) storeOrder(o, null);
        renderOrders();
        break;
      case "ORDER_UPDATE":
        state.lastDataAt = now;
        onOrderUpdate(msg, pending);
        if (desk) desk.onOrderUpdate(msg);
        break;
      case "ORDER_LIST_UPDATE": onListUpdate(msg, pending); break;
      case "ERROR": onError(msg, pending); break;
      default:  // SUBSCRIBED, UNSUBSCRIBED, the replies to desk.js and anything newer
        if (pending && pending.onReply) {   // a desk.js request: its one reply
          state.pending.delete(msg.id);
          pending.onReply(msg);
        }
        break;
    }
    render();
  }

  /** After a reconnect: the account's order events since the last one seen, and the
   * previous connection's market subscriptions, restored by the server with their
   * snapshots (docs/protocol.md, resume). Without an account, only the session. */
  function resume() {
    const epoch = state.resumeEpoch, session = state.resumeSession;
    state.resumeEpoch = null;
    state.resumeSession = null;
    if (session && !epoch) { onRestored({}); return; } // cannot ask: subscribe again
    if (!epoch || (!state.account && !session)) return;
    const cmd = { action: "resume", epoch, seq: state.seq };
    if (session) cmd.session = session;
    send(cmd, session ? { kind: "resume" } : undefined);
  }

  /** RESUMED of a resume with a session (or its failure: ``{}``): subscribe what the
   * watch list has and the server did not restore, drop what it restored and the
   * list no longer has; the book likewise (desk.js). */
  function onRestored(msg) {
    const subs = msg.restored && msg.subscriptions ? msg.subscriptions : null;
    const restored = new Set(subs ? subs.symbols || [] : []);
    for (const symbol of state.watch.keys()) if (!restored.has(symbol)) subscribe(symbol);
    for (const symbol of restored) {
      if (!state.watch.has(symbol)) send({ action: "unsubscribe_ticker", symbol });
    }
    if (desk) desk.onSubscriptions(subs ? subs.books || [] : null);
    activity("RESTORED", subs ? `${restored.size} subscription(s) restored by the server`
      : "subscriptions not restored; subscribed again", subs ? "good" : "warn");
  }

  function onConnected(msg) {
    const again = state.everConnected;
    state.resumeEpoch = state.epoch || null; // the previous connection's history
    state.epoch = msg.epoch || null;
    state.resumeSession = state.session || null; // its subscriptions, restored by resume
    state.session = msg.session || null;
    const restoring = Boolean(state.resumeSession);
    state.live = true;
    state.everConnected = true;
    state.attempt = 0;
    state.server = msg.server;
    state.feed = msg.feed || null;
    state.account = msg.account;
    clearTimeout(state.connectTimer);
    activity(again ? "RECONNECTED" : "CONNECTED",
      `${msg.server || "server"}, account ${msg.account || "— (token needed)"}`, "good");
    // after a reconnect the server restores the subscriptions (resume); subscribing
    // here is for a first connection (or a server that gave no session)
    if (!restoring) for (const symbol of state.watch.keys()) subscribe(symbol);
    send({ action: "get_symbols" }, { kind: "symbols" });
    if (desk) desk.onConnected(restoring);
    if (state.account) {
      state.authNeeded = false;
      showAuth(false);
      resume();
      requestAccountState();
    } else {
      state.authNeeded = true;
      const token = sessionStorage.getItem(TOKEN_KEY);
      if (token) authenticate(token);
      else {
        showAuth(true);
        resume(); // market data only: an anonymous session restores without a token
      }
    }
    clearInterval(state.pingTimer);
    state.pingTimer = setInterval(ping, PING_EVERY_MS);
    setTimeout(ping, 300); // a first round trip once the resubscriptions are answered
  }

  function onAuthenticated(msg) {
    state.account = msg.account;
    state.authNeeded = false;
    if (state.pendingToken) sessionStorage.setItem(TOKEN_KEY, state.pendingToken);
    state.pendingToken = null;
    showAuth(false);
    activity("AUTH", `signed in as ${msg.account}`, "good");
    resume();
    requestAccountState();
  }

  function onFeedStatus(msg) {
    const before = state.feed && state.feed.status;
    state.feed = msg;
    if (before !== msg.status) {
      const extra = msg.status === "UP" ? "" :
        ` (attempt ${msg.attempt}${msg.reason ? ", " + msg.reason : ""})`;
      activity("FEED", `${msg.feed || "feed"} ${msg.status}${extra}`,
        msg.status === "UP" ? "good" : "warn");
    }
  }

  function onError(msg, pending) {
    const text = `${msg.code}: ${msg.message}`;
    activity("ERROR", text, "bad");
    if (pending && pending.onError) {     // a desk.js request: it reports its own errors
      state.pending.delete(msg.id);
      pending.onError(msg);
      return;
    }
    if (msg.code === "UNAUTHORIZED") {
      if (pending && pending.kind === "auth") {
        sessionStorage.removeItem(TOKEN_KEY);
        state.pendingToken = null;
        $("auth-error").textContent = "That token was refused.";
        state.account = null;
        resume(); // the session's market data, if it was anonymous
      }
      state.account = null;
      state.authNeeded = true;
      showAuth(true);
    }
    if (!pending) {
      notice(text);
      return;
    }
    pending.done = true;
    if (pending.kind === "resume") {   // e.g. a server without sessions: subscribe again
      state.pending.delete(msg.id);
      onRestored({});
    } else if (pending.kind === "ticket") {
      ticketResult("error", `${pending.label}: ${text}`);
    } else if (pending.kind === "subscribe") {
      if (msg.code === "UNKNOWN_SYMBOL" || msg.code === "BAD_REQUEST") {
        removeSymbol(pending.symbol, false);
        notice(`${pending.symbol} removed from the watch list: ${msg.message}`);
      }
    } else if (pending.kind === "fetch" && pending.tries < 3 &&
               (msg.code === "INTERNAL" || msg.code === "RATE_LIMITED")) {
      const sock = state.ws;
      setTimeout(() => {
        if (state.ws === sock && state.live) fetchState(pending.cmd, pending.tries + 1);
      }, 1000 * (pending.tries + 1));
    } else if (pending.kind === "cancel") {
      notice(`Cancel #${pending.orderId} failed: ${text}`);
    } else if (pending.kind !== "auth") {
      notice(text);
    }
  }

  // -- the watch list -------------------------------------------------------------
  /** The remembered watch list; with none (a first visit), the list starts from the
   * symbols the server serves (SYMBOLS, asked for after every CONNECTED). */
  function loadWatch() {
    let list = null;
    try {
      const stored = JSON.parse(localStorage.getItem(WATCH_KEY) || "null");
      if (Array.isArray(stored)) list = stored.filter((s) => SYMBOL_RULE.re.test(s));
    } catch (_) { /* start from the server's */ }
    state.seedWatch = list === null;
    for (const s of list || []) addSymbol(s, false);
    showWatchEmpty();
  }

  function onSymbols(msg) {
    state.served = (msg.symbols || []).filter((s) => SYMBOL_RULE.re.test(s));
    if (state.seedWatch) {
      state.seedWatch = false;
      for (const s of state.served) addSymbol(s, false);
      saveWatch();
    }
    updateDatalist();
    if (desk && !desk.selected() && state.watch.size) selectSymbol(state.watch.keys().next().value);
  }

  function showWatchEmpty() {
    const empty = $("watch-empty");
    if (empty) empty.hidden = state.watch.size > 0 || state.seedWatch;
  }

  /** Show ``symbol`` in the chart, book and tape, and put it in the order ticket. */
  function selectSymbol(symbol) {
    if (!state.watch.has(symbol) && !SYMBOL_RULE.re.test(symbol)) return;
    $("t-symbol").value = symbol;
    updateTicket();
    if (desk) desk.select(symbol);
  }

  function saveWatch() {
    try {
      localStorage.setItem(WATCH_KEY, JSON.stringify([...state.watch.keys()]));
    } catch (_) { /* storage may be disabled */ }
  }

  function subscribe(symbol) {
    send({ action: "subscribe_ticker", symbol }, { kind: "subscribe", symbol });
  }

  function addSymbol(raw, announce) {
    const symbol = String(raw || "").trim().toUpperCase();
    if (!SYMBOL_RULE.re.test(symbol)) {
      notice(`"${raw}" is not a symbol (${SYMBOL_RULE.pattern}).`);
      return false;
    }
    if (state.watch.has(symbol)) return true;
    const spark = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    spark.setAttribute("viewBox", "0 0 100 24");
    spark.setAttribute("preserveAspectRatio", "none");
    spark.setAttribute("class", "spark");
    spark.setAttribute("aria-hidden", "true");
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    spark.append(line);
    const cells = {
      price: h("td", { class: "num price", text: "—", onpointerenter: () => {
        const m = state.watch.get(symbol) && state.watch.get(symbol).last;
        if (m) {   // the tooltip is written when the pointer comes, not on every tick
          cells.price.title = `bid ${fmtPrice(m.bid)} / ask ${fmtPrice(m.ask)}; 24 h high ` +
            `${fmtPrice(m.high)}, low ${fmtPrice(m.low)}, volume ${fmtQty(m.volume)}`;
        }
      } }),
      change: h("td", { class: "num change", text: "—" }),
      spark: h("td", { class: "trend" }, spark),
      line,
    };
    const remove = h("button", {
      type: "button", class: "icon", title: `Remove ${symbol}`, "aria-label": `Remove ${symbol}`,
      text: "×", onclick: (ev) => { ev.stopPropagation(); removeSymbol(symbol, true); },
    });
    const row = h("tr", { dataset: { symbol }, title: "Click to use in the order ticket" },
      h("td", { class: "sym", text: symbol }), cells.price, cells.change, cells.spark,
      h("td", { class: "act" }, remove));
    row.addEventListener("click", () => selectSymbol(symbol));
    $("watch-rows").append(row);
    state.watch.set(symbol, { row, cells, history: [], last: null, dirty: false, shown: null });
    saveWatch();
    updateDatalist();
    showWatchEmpty();
    if (desk && !desk.selected()) selectSymbol(symbol);
    if (state.live) subscribe(symbol);
    if (announce) activity("WATCH", `watching ${symbol}`);
    return true;
  }

  function removeSymbol(symbol, unsubscribe) {
    const entry = state.watch.get(symbol);
    if (!entry) return;
    entry.row.remove();
    state.watch.delete(symbol);
    saveWatch();
    updateDatalist();
    showWatchEmpty();
    if (unsubscribe) send({ action: "unsubscribe_ticker", symbol });
  }

  function updateDatalist() {
    const list = $("watch-symbols");
    const all = new Set([...state.watch.keys(), ...state.served]);
    list.replaceChildren(...[...all].map((s) => h("option", { value: s })));
  }

  /** A MARKET_UPDATE: kept, and drawn in the next animation frame (with 50 symbols
   * streaming, one frame draws every row that changed, once). */
  function onMarket(msg) {
    const entry = state.watch.get(msg.symbol);
    if (!entry) return;
    if (!entry.shown) entry.shown = entry.last;
    entry.last = msg;
    entry.pendingMsg = true;
    const hist = entry.history;
    const prev = entry.histMsg;
    if (!hist.length || hist[hist.length - 1] !== msg.price || prev.seq !== msg.seq) {
      hist.push(msg.price);
      if (hist.length > SPARK_POINTS) hist.shift();
      entry.histMsg = msg;
      entry.dirty = true;
    }
    scheduleSparks();
  }

  function drawRow(entry) {
    entry.pendingMsg = false;
    const msg = entry.last;
    const prev = entry.shown;
    entry.shown = null;
    const { cells } = entry;
    cells.price.textContent = fmtPrice(msg.price);
    if (prev && prev.price !== msg.price) {  // the colour of the last move
      const up = msg.price > prev.price;
      cells.price.classList.toggle("tick-up", up);
      cells.price.classList.toggle("tick-down", !up);
    }
    setSigned(cells.change, msg.priceChangePercent, fmtPct(msg.priceChangePercent));
  }

  let sparkFrame = 0;
  let sparksAt = 0;
  function scheduleSparks() {
    if (sparkFrame) return;
    sparkFrame = requestAnimationFrame((now) => {
      sparkFrame = 0;
      const sparks = now - sparksAt >= SPARK_EVERY_MS;
      let more = false;
      for (const entry of state.watch.values()) {
        if (entry.pendingMsg) drawRow(entry);
        if (entry.dirty) {
          if (sparks) drawSpark(entry);
          else more = true;
        }
      }
      if (sparks) sparksAt = now;
      if (more) setTimeout(scheduleSparks, SPARK_EVERY_MS);
    });
  }

  function drawSpark(entry) {
    entry.dirty = false;
    const hist = entry.history;
    if (hist.length < 2) return;
    let lo = Infinity;
    let hi = -Infinity;
    for (const p of hist) { lo = Math.min(lo, p); hi = Math.max(hi, p); }
    const span = hi - lo || 1;
    const step = 100 / (SPARK_POINTS - 1);
    const x0 = 100 - step * (hist.length - 1);
    const pts = hist.map((p, i) =>
      `${(x0 + i * step).toFixed(2)},${(22 - ((p - lo) / span) * 20).toFixed(2)}`);
    entry.cells.line.setAttribute("points", pts.join(" "));
    entry.cells.line.setAttribute("class", hist[hist.length - 1] >= hist[0] ? "up" : "down");
  }

  // -- account: positions, portfolio, orders -------------------------------------
  /** Keyed rows: keep a row per key (so a button under the pointer survives updates). */
  function syncRows(tbody, items, keyOf, create, update) {
    if (!tbody._rows) tbody._rows = new Map();
    const rows = tbody._rows;
    const keep = new Set();
    let cursor = tbody.firstElementChild;
    for (const item of items) {
      const key = String(keyOf(item));
      keep.add(key);
      let row = rows.get(key);
      if (!row) {
        row = create(item);
        row.dataset.key = key;
        rows.set(key, row);
      }
      update(row, item);
      if (row !== cursor) tbody.insertBefore(row, cursor);
      else cursor = cursor.nextElementSibling;
    }
    for (const [key, row] of rows) {
      if (!keep.has(key)) { row.remove(); rows.delete(key); }
    }
  }

  function cellsOf(row) { return row.children; }

  function renderPositions() {
    const tbody = $("position-rows");
    const list = [...state.positions].sort((a, b) => a.symbol.localeCompare(b.symbol));
    syncRows(tbody, list, (p) => p.symbol,
      (p) => {
        const close = h("button", { type: "button", class: "small", text: "Close",
          title: `Close ${p.symbol} at market` });
        const row = h("tr", null, ...Array.from({ length: 8 }, () => h("td")),
          h("td", { class: "act" }, close));
        close.addEventListener("click", () => closePosition(row._pos));
        for (let i = 2; i < 8; i++) row.children[i].className = "num";
        return row;
      },
      (row, p) => {
        row._pos = p;
        const c = cellsOf(row);
        c[0].textContent = p.symbol;
        c[1].textContent = p.side;
        c[1].className = p.side === "LONG" ? "side-long" : "side-short";
        c[2].textContent = fmtQty(p.quantity);
        c[3].textContent = fmtPrice(p.entryPrice);
        c[4].textContent = fmtPrice(p.markPrice);
        setSigned(c[5], p.unrealizedPnl, fmtMoney(p.unrealizedPnl, true));
        c[5].classList.add("num");
        setSigned(c[6], p.realizedPnl, fmtMoney(p.realizedPnl, true));
        c[6].classList.add("num");
        c[7].textContent = fmtMoney(p.notional);
      });
    $("positions-empty").hidden = list.length > 0;
  }

  function closePosition(p) {
    if (!p) return;
    const side = p.side === "LONG" ? "SELL" : "BUY";
    placeCommand({ action: "place_order", symbol: p.symbol, side, type: "MARKET",
      quantity: p.quantity }, `Close ${p.symbol}`);
  }

  function renderPortfolio(pf) {
    if (!pf) return;
    for (const dd of document.querySelectorAll("#portfolio dd[data-key]")) {
      const v = pf[dd.dataset.key];
      if (dd.dataset.key.endsWith("Count")) dd.textContent = v === undefined ? "—" : String(v);
      else if (dd.hasAttribute("data-signed")) setSigned(dd, v, fmtMoney(v, true));
      else dd.textContent = fmtMoney(v);
      if (typeof v === "number") dd.title = String(v);
    }
  }

  function storeOrder(order, listType) {
    if (!order || order.orderId === null || order.orderId === undefined) return;
    const old = state.orders.get(order.orderId);
    state.orders.set(order.orderId, {
      ...order, listType: listType || (old && old.listType) || null });
    if (state.orders.size > MAX_ORDERS_KEPT) {  // forget the oldest finished orders
      const finished = [...state.orders.values()]
        .filter((o) => !OPEN_STATUSES.has(o.status))
        .sort((a, b) => a.orderId - b.orderId);
      for (const o of finished.slice(0, state.orders.size - MAX_ORDERS_KEPT)) {
        state.orders.delete(o.orderId);
      }
    }
  }

  function orderLabel(o) {
    return `#${o.orderId} ${o.side} ${fmtQty(o.quantity)} ${o.symbol} ${o.type}`;
  }

  function onOrderUpdate(msg, pending) {
    const o = msg.order || {};
    const listType = msg.orderType === "OCO" || msg.orderType === "BRACKET" ? msg.orderType : null;
    storeOrder(o, listType);
    renderOrders();
    const ex = msg.executionType;
    let text = orderLabel(o);
    if (listType) text += ` (${listType} #${o.listId})`;
    if (o.price !== null && o.price !== undefined) text += ` @ ${fmtPrice(o.price)}`;
    if (ex === "TRADE") {
      text += ` — filled ${fmtQty(o.filledQuantity)} @ ${fmtPrice(o.avgPrice)}, fee ${o.fee}`;
      refreshSoon();
    } else if (ex === "AMENDED") {
      text += ` — stop now ${fmtPrice(o.currentStopPrice)}`;
    } else if (ex === "REJECTED") {
      text += ` — ${o.rejectReason || "rejected"}`;
    }
    activity(ex, text, ex === "REJECTED" ? "bad" : ex === "TRADE" ? "good" : "");
    if (pending && pending.kind === "ticket") {
      if (ex === "REJECTED") {
        if (!pending.rejected) {
          pending.rejected = true;
          ticketResult("error", `${pending.label}: rejected — ${o.rejectReason || "no reason given"}`);
        }
      } else if (!pending.rejected && !pending.list) {
        if (ex === "NEW") ticketResult("ok", `${pending.label}: accepted as order #${o.orderId}`);
        else if (ex === "TRADE") {
          ticketResult("ok", `${pending.label}: order #${o.orderId} filled ` +
            `${fmtQty(o.filledQuantity)} @ ${fmtPrice(o.avgPrice)}`);
        }
      }
      pending.done = true;
    }
  }

  function onListUpdate(msg, pending) {
    const l = msg.list || {};
    const bad = l.status === "REJECTED";
    activity("LIST", `${l.listType} #${l.listId} ${l.status}` +
      (bad ? ` — ${l.rejectReason}` : ` (orders ${(l.orderIds || []).join(", ")})`),
      bad ? "bad" : "");
    if (pending && pending.kind === "ticket") {
      pending.done = true;
      if (bad) {
        pending.rejected = true;
        ticketResult("error", `${pending.label}: rejected — ${l.rejectReason || "no reason given"}`);
      } else if (!pending.list && !pending.rejected) {
        pending.list = true;
        ticketResult("ok", `${pending.label}: ${l.listType} #${l.listId} accepted ` +
          `(orders ${(l.orderIds || []).join(", ")})`);
      }
    }
  }

  function renderOrders() {
    const openOnly = $("orders-open-only").checked;
    let list = [...state.orders.values()];
    if (openOnly) list = list.filter((o) => OPEN_STATUSES.has(o.status));
    list.sort((a, b) => b.orderId - a.orderId);
    list = list.slice(0, MAX_ORDERS_SHOWN);
    syncRows($("order-rows"), list, (o) => o.orderId,
      () => {
        const cancel = h("button", { type: "button", class: "small danger", text: "Cancel" });
        const row = h("tr", null, ...Array.from({ length: 11 }, () => h("td")),
          h("td", { class: "act" }, cancel));
        for (const i of [5, 6, 7, 8, 9]) row.children[i].className = "num";
        cancel.addEventListener("click", () => cancelOrder(row._order));
        row._cancel = cancel;
        return row;
      },
      (row, o) => {
        row._order = o;
        const c = cellsOf(row);
        c[0].textContent = String(o.orderId);
        c[1].textContent = fmtTime(o.updateTime || o.createTime);
        c[2].textContent = o.symbol;
        c[3].textContent = o.side;
        c[3].className = o.side === "BUY" ? "side-long" : "side-short";
        c[4].textContent = o.type + (o.listType ? ` · ${o.listType} #${o.listId}` : "");
        c[5].textContent = fmtQty(o.quantity);
        c[6].textContent = fmtPrice(o.price);
        const stop = o.currentStopPrice ?? o.stopPrice;
        c[7].textContent = stop === null || stop === undefined ? "—" : fmtPrice(stop);
        if (o.trailingDelta) c[7].textContent += ` (${o.trailingDelta} bps)`;
        c[8].textContent = fmtQty(o.filledQuantity);
        c[9].textContent = o.avgPrice ? fmtPrice(o.avgPrice) : "—";
        c[10].textContent = o.status;
        c[10].title = o.rejectReason || "";
        c[10].className = "status-" + String(o.status).toLowerCase();
        row._cancel.hidden = !OPEN_STATUSES.has(o.status);
        row.classList.toggle("done", !OPEN_STATUSES.has(o.status));
      });
    $("orders-empty").hidden = list.length > 0;
    if (desk) desk.onOrdersChanged();
  }

  function cancelOrder(o) {
    if (!o) return;
    const id = send({ action: "cancel_order", orderId: o.orderId },
      { kind: "cancel", orderId: o.orderId });
    if (!id) notice("Not connected: the cancel was not sent.");
  }

  // -- the order ticket -------------------------------------------------------------
  const HINTS = {
    MARKET: "Fills at once at the last trade price.",
    LIMIT: "BUY fills when a trade ≤ price, SELL when a trade ≥ price, at the limit price.",
    LIMIT_MAKER: "As LIMIT, but rejected if it would fill at once.",
    STOP_LOSS: "BUY triggers on a trade ≥ stop (above market), SELL on a trade ≤ stop " +
      "(below market); then executes as MARKET. A trailing delta trails the stop.",
    STOP_LOSS_LIMIT: "As STOP_LOSS, but becomes a LIMIT at the limit price when triggered.",
    TAKE_PROFIT: "BUY triggers on a trade ≤ stop (below market), SELL on a trade ≥ stop " +
      "(above market); then executes as MARKET.",
    TAKE_PROFIT_LIMIT: "As TAKE_PROFIT, but becomes a LIMIT at the limit price when triggered.",
    TRAILING_STOP: "A STOP_LOSS that trails the market by the delta (1 bps = 0.01 %); " +
      "an optional stop price delays the tracking.",
    OCO: "Two legs; when one triggers or fills, the other expires. SELL: take-profit or " +
      "limit-maker above the market, stop below. BUY: the mirror.",
    BRACKET: "An entry, then a take-profit and a stop-loss on the other side that work as " +
      "an OCO once the entry is fully filled.",
  };

  function side() {
    return document.querySelector('#ticket input[name="side"]:checked').value;
  }

  function fillLegOptions(select, types) {
    const current = select.value;
    select.replaceChildren(...types.map((t) => h("option", { value: t, text: t })));
    if (types.includes(current)) select.value = current;
  }

  function showLegInputs(prefix) {
    const t = $(`oco-${prefix}-type`).value;
    $(`oco-${prefix}-price`).hidden = !PRICED.has(t);
    $(`oco-${prefix}-stop`).hidden = !STOPS.has(t);
    $(`oco-${prefix}-delta`).hidden = !STOPS.has(t);
  }

  function updateTicket() {
    const type = $("t-type").value;
    const s = side();
    for (const fs of document.querySelectorAll("#ticket [data-show]")) {
      const show = fs.dataset.show;
      fs.hidden = show === "single" ? (type === "OCO" || type === "BRACKET") : show !== type;
    }
    const single = document.querySelector('#ticket [data-show="single"]');
    single.querySelector('[data-field="price"]').hidden = !PRICED.has(type);
    single.querySelector('[data-field="stopPrice"]').hidden = !STOPS.has(type);
    single.querySelector('[data-field="trailingDelta"]').hidden = !STOPS.has(type);
    single.hidden = single.hidden || !(PRICED.has(type) || STOPS.has(type));
    fillLegOptions($("oco-above-type"), s === "SELL" ? LIMIT_LEGS : STOP_LEGS);
    fillLegOptions($("oco-below-type"), s === "SELL" ? STOP_LEGS : LIMIT_LEGS);
    showLegInputs("above");
    showLegInputs("below");
    $("br-entry-price").hidden = $("br-entry-type").value !== "LIMIT";
    $("t-client-id").closest("label").hidden = type === "OCO" || type === "BRACKET";
    $("ticket-hint").textContent = HINTS[type] || "";
    const symbol = $("t-symbol").value.trim().toUpperCase() || "…";
    const button = $("t-submit");
    button.textContent = `${s === "BUY" ? "Buy" : "Sell"} ${symbol}` +
      (type === "MARKET" ? " at market" : ` · ${type.replace(/_/g, " ").toLowerCase()}`);
    button.classList.toggle("buy", s === "BUY");
    button.classList.toggle("sell", s === "SELL");
    if (desk) desk.onTicketChanged();
  }

  class TicketError extends Error {}

  /** The number in an input, or undefined when empty; a non-number is an error. */
  function num(id, name) {
    const input = $(id);
    if (input.hidden || (input.closest("[hidden]") !== null)) return undefined;
    if (input.validity && input.validity.badInput) throw new TicketError(`${name} is not a number`);
    const raw = input.value.trim();
    if (raw === "") return undefined;
    const v = Number(raw);
    if (!Number.isFinite(v)) throw new TicketError(`${name} is not a number`);
    return v;
  }

  function compact(obj) {
    const out = {};
    for (const [k, v] of Object.entries(obj)) if (v !== undefined && v !== "") out[k] = v;
    return out;
  }

  function buildCommand() {
    const type = $("t-type").value;
    const symbol = $("t-symbol").value.trim().toUpperCase();
    const base = { symbol, side: side(), quantity: num("t-quantity", "quantity") };
    if (type === "OCO") {
      const leg = (p) => compact({
        type: $(`oco-${p}-type`).value,
        price: num(`oco-${p}-price`, `${p} price`),
        stopPrice: num(`oco-${p}-stop`, `${p} stop price`),
        trailingDelta: num(`oco-${p}-delta`, `${p} trailing delta`),
      });
      return compact({ action: "place_oco", ...base, above: leg("above"), below: leg("below") });
    }
    if (type === "BRACKET") {
      return compact({
        action: "place_bracket", ...base,
        entry: compact({ type: $("br-entry-type").value,
          price: num("br-entry-price", "entry price") }),
        takeProfit: compact({ price: num("br-tp-price", "take-profit price") }),
        stopLoss: compact({
          stopPrice: num("br-sl-stop", "stop-loss stop price"),
          price: num("br-sl-price", "stop-loss limit price"),
          trailingDelta: num("br-sl-delta", "stop-loss trailing delta"),
        }),
      });
    }
    return compact({
      action: "place_order", ...base, type,
      price: num("t-price", "price"),
      stopPrice: num("t-stop", "stop price"),
      trailingDelta: num("t-delta", "trailing delta"),
      clientOrderId: $("t-client-id").value.trim() || undefined,
    });
  }

  function ticketResult(kind, text) {
    const out = $("ticket-result");
    out.textContent = text;
    out.dataset.kind = kind;
  }

  function placeCommand(cmd, label) {
    if (!state.live) {
      ticketResult("error", `${label}: not connected — nothing was sent.`);
      return;
    }
    if (!state.account) {
      ticketResult("error", `${label}: sign in with a token first.`);
      showAuth(true);
      return;
    }
    const id = send(cmd, { kind: "ticket", label });
    if (id) ticketResult("pending", `${label}: sent, waiting for the server…`);
    else ticketResult("error", `${label}: not connected — nothing was sent.`);
  }

  function onTicketSubmit(ev) {
    ev.preventDefault();
    let cmd;
    try {
      cmd = buildCommand();
    } catch (err) {
      if (err instanceof TicketError) {
        ticketResult("error", err.message);
        return;
      }
      throw err;
    }
    const type = $("t-type").value;
    placeCommand(cmd, `${cmd.side} ${cmd.quantity ?? "?"} ${cmd.symbol} ${type}`);
  }

  // -- token form ---------------------------------------------------------------
  function showAuth(show) {
    $("auth-form").hidden = !show;
    if (!show) $("auth-error").textContent = "";
  }

  function authenticate(token) {
    state.pendingToken = token;
    if (!send({ action: "auth", token }, { kind: "auth" })) {
      sessionStorage.setItem(TOKEN_KEY, token); // used on the next connection
    }
  }

  // -- the indicator ---------------------------------------------------------------
  function connectionState(now) {
    if (!state.live) return "disconnected";
    const feedUp = state.feed && state.feed.status === "UP";
    if (!feedUp || !state.lastDataAt || now - state.lastDataAt > STALE_MS) return "partial";
    return "realtime";
  }

  function render() {
    const now = Date.now();
    const st = connectionState(now);
    const badge = $("status");
    const label = { realtime: "REAL-TIME", partial: "PARTIAL", disconnected: "DISCONNECTED" }[st];
    if (badge.dataset.state !== st) badge.dataset.state = st;
    if (badge.textContent !== label) badge.textContent = label;
    let detail;
    if (st === "disconnected") {
      if (state.ws) detail = state.everConnected ? "reconnecting…" : "connecting…";
      else {
        const s = Math.max(0, (state.retryAt - now) / 1000).toFixed(1);
        detail = `retry in ${s} s (attempt ${state.attempt})`;
      }
    } else if (st === "partial") {
      const feed = state.feed || {};
      if (feed.status !== "UP") {
        detail = `feed ${feed.status || "unknown"}` +
          (feed.retryInMs ? `, retry in ${(feed.retryInMs / 1000).toFixed(1)} s` : "");
      } else detail = state.lastDataAt ? "no fresh data" : "waiting for data";
    } else {
      detail = "live";
    }
    setText("status-detail", detail);
    setText("last-update", state.lastDataAt
      ? `${((now - state.lastDataAt) / 1000).toFixed(1)} s ago` : "never");
    setText("rtt", state.rttMs === null ? "—" : `${state.rttMs.toFixed(state.rttMs < 10 ? 1 : 0)} ms`);
    const feed = state.live ? state.feed : null;  // unknown while disconnected
    setText("feed", feed ? `${feed.feed || ""} ${feed.status}`.trim() : "—");
    $("feed").dataset.status = feed ? feed.status : "";
    if (document.body.dataset.state !== st) document.body.dataset.state = st;
    setText("account", state.account || (state.live && state.authNeeded ? "token needed" : "—"));
    $("reconnect-now").hidden = st !== "disconnected" || state.ws !== null;
  }

  function setText(id, text) {
    const node = $(id);
    if (node.textContent !== text) node.textContent = text;
  }

  function tick() {
    if (state.live && Date.now() - state.lastMsgAt > DEAD_AFTER_MS) {
      dropSocket(`nothing received for ${DEAD_AFTER_MS / 1000} s`);
    }
    render();
  }

  // -- wiring ---------------------------------------------------------------------
  function takeTokenFromUrl() {
    // `tickdesk run` prints the dashboard URL with ?token=... (as Jupyter does): keep
    // the token for this tab's session and drop it from the address bar.
    const params = new URLSearchParams(location.search);
    const token = params.get("token");
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + (rest ? `?${rest}` : "") + location.hash);
  }

  function init() {
    takeTokenFromUrl();
    $("watch-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const input = $("watch-symbol");
      if (addSymbol(input.value, true)) input.value = "";
    });
    $("ticket").addEventListener("submit", onTicketSubmit);
    $("ticket").addEventListener("change", updateTicket);
    $("t-symbol").addEventListener("input", updateTicket);
    $("orders-open-only").addEventListener("change", renderOrders);
    $("auth-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const token = $("auth-token").value;
      if (!token) return;
      $("auth-token").value = "";
      $("auth-error").textContent = "";
      authenticate(token);
    });
    $("reconnect-now").addEventListener("click", () => { if (!state.ws) connect(); });
    $("t-symbol").addEventListener("change", () => {
      const symbol = $("t-symbol").value.trim().toUpperCase();
      if (state.watch.has(symbol) && desk) desk.select(symbol);
    });
    $("ticket").addEventListener("input", () => { if (desk) desk.onTicketChanged(); });
    desk = window.tickdeskDesk ? window.tickdeskDesk(deskApi()) : null;
    loadWatch();
    updateTicket();
    renderOrders();
    renderPositions();
    setInterval(tick, TICK_MS);
    connect();
  }

  /** What desk.js may use of this file: sending, formatting, the ticket and the lists. */
  function deskApi() {
    return Object.freeze({
      h, send, notice, activity, fmtPrice, fmtQty, fmtMoney, fmtTime, decimalsOf,
      live: () => state.live,
      account: () => state.account,
      watched: () => [...state.watch.keys()],
      known: (symbol) => state.watch.has(symbol) || state.served.includes(symbol),
      lastMarket: (symbol) => { const e = state.watch.get(symbol); return e ? e.last : null; },
      openOrders: () => [...state.orders.values()].filter((o) => OPEN_STATUSES.has(o.status)),
      selectSymbol,
      ticketSymbol: () => $("t-symbol").value.trim().toUpperCase(),
      ticketSide: side,
      setTicketSide: (s) => {
        document.querySelector(`#ticket input[name="side"][value="${s}"]`).checked = true;
        updateTicket();
      },
      setTicketType: (t) => { $("t-type").value = t; updateTicket(); },
      setTicketPrice: (v) => {
        if (!PRICED.has($("t-type").value)) $("t-type").value = "LIMIT";
        $("t-price").value = String(v);
        updateTicket();
      },
    });
  }

  // A read-only handle for people debugging in the console, and for the tests.
  window.tickdesk = Object.freeze({
    state, backoffDelay, connectionState,
    desk: () => (desk ? desk.inspect() : null),
    chartImage: () => (desk ? desk.chartImage() : ""),
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
