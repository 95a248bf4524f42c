// tickdesk dashboard, the desk: the price chart (klines, live candles, fills and working
// orders), the order book, the trade tape, the fill history (paged, CSV), the equity
// curve, the order ticket's costs and filters, and the keyboard shortcuts.
// Plain JavaScript, no build step. Loaded before app.js, which owns the connection and
// calls window.tickdeskDesk(api) once, then the returned hooks (docs/dashboard.md).
// Everything here runs on the page's one thread; DOM writes of streaming data are
// batched into one animation frame.
"use strict";

window.tickdeskDesk = (api) => {
  const $ = (id) => document.getElementById(id);
  const { h, send, fmtPrice, fmtQty, fmtMoney, fmtTime } = api;
  const LWC = window.LightweightCharts || null;

  // -- settings ---------------------------------------------------------------
  const INTERVALS = { "1m": 60e3, "5m": 300e3, "15m": 900e3, "1h": 3600e3, "4h": 14400e3,
    "1d": 86400e3 };
  const INTERVAL_KEYS = Object.keys(INTERVALS);
  const INTERVAL_KEY = "tickdesk.interval";
  const KLINES_LIMIT = 500;     // candles asked for on a change of symbol or interval
  const MAX_BARS = 2000;        // candles kept (the oldest are dropped)
  const MAX_MARKERS = 300;      // fills drawn on the chart (the newest)
  const MARKER_FILLS = 200;     // fills of the symbol asked for (get_fills limit)
  const BOOK_LEVELS = 10;       // levels shown a side
  const TAPE_ROWS = 40;         // trades kept in the tape
  const FILLS_PAGE = 25;        // fills a page of the history
  const CSV_PAGE = 1000;        // fills a request while writing the CSV
  const CSV_MAX_PAGES = 500;    // at most 500,000 fills in one CSV
  const EQUITY_SAMPLES = 1440;  // a day of minute samples
  const MAX_EQUITY_POINTS = 5000;
  const FEE_BPS = feeBps();

  function feeBps() {
    const meta = document.querySelector('meta[name="tickdesk-fee-bps"]');
    const v = meta ? Number(meta.content) : NaN;
    return Number.isFinite(v) ? v : null;
  }

  const desk = {
    symbol: null,         // the selected symbol (chart, book, tape, ticket quote)
    interval: INTERVALS[localStorage.getItem(INTERVAL_KEY)] ? localStorage.getItem(INTERVAL_KEY)
      : "1m",
    gen: 0,               // bumps on every change of symbol or interval
    bars: [],             // [{time (s), open, high, low, close}], oldest first
    klines: "none",       // none | loading | loaded | unavailable
    prev: null,           // the previous MARKET_UPDATE of the selected symbol
    last: null,           // the latest MARKET_UPDATE of the selected symbol
    book: null,           // the latest BOOK_UPDATE of the selected symbol
    tape: [],             // [{time, price, qty, dir}], newest first
    tapeNew: [],          // trades not drawn yet, oldest first
    tapeReset: false,     // the tape's rows belong to another symbol
    barDirty: false,      // the current candle changed since the last frame
    fillMarks: [],        // [{time (ms), side, quantity, price}] of the selected symbol
    priceLines: [],
    info: new Map(),      // symbol -> SYMBOL_INFO (or {missing: reason})
    fills: { before: null, stack: [], nextBefore: null, rows: [], loading: false },
    equity: [],           // [{time (s), value}], oldest first
    equityLive: 0,
    frame: 0,
    dirty: new Set(),
  };

  // -- the chart ------------------------------------------------------------------
  const colors = { up: "#2fbf71", down: "#f0566a", text: "#d8e0ea", grid: "#1c2635",
    line: "#243042", panel: "#131a24", blue: "#5aa9ff", yellow: "#f2c14e" };
  let chart = null;
  let candles = null;
  let markers = null;
  let equityChart = null;
  let equitySeries = null;

  function chartOptions() {
    return {
      autoSize: true,
      layout: { background: { type: "solid", color: colors.panel }, textColor: colors.text,
        attributionLogo: true, fontFamily: "system-ui, sans-serif" },
      grid: { vertLines: { color: colors.grid }, horzLines: { color: colors.grid } },
      rightPriceScale: { borderColor: colors.line },
      timeScale: { borderColor: colors.line, timeVisible: true, secondsVisible: false,
        rightOffset: 6, barSpacing: 8 },
      crosshair: { mode: 0 },
    };
  }

  function makeCharts() {
    if (!LWC) {
      $("chart-note").textContent = "chart library not loaded";
      return;
    }
    chart = LWC.createChart($("chart"), chartOptions());
    candles = chart.addSeries(LWC.CandlestickSeries, {
      upColor: colors.up, downColor: colors.down, borderVisible: false,
      wickUpColor: colors.up, wickDownColor: colors.down,
    });
    markers = LWC.createSeriesMarkers(candles, []);
    equityChart = LWC.createChart($("equity-chart"), {
      ...chartOptions(), timeScale: { borderColor: colors.line, timeVisible: true },
      handleScroll: false, handleScale: false,
    });
    equitySeries = equityChart.addSeries(LWC.AreaSeries, {
      lineColor: colors.blue, topColor: "rgba(90, 169, 255, 0.35)",
      bottomColor: "rgba(90, 169, 255, 0.02)", lineWidth: 2,
      priceFormat: { type: "price", precision: 2, minMove: 0.01 },
    });
  }

  function bucket(ms) {
    const step = INTERVALS[desk.interval];
    return Math.floor(ms / step) * step / 1000;
  }

  function showIntervals() {
    for (const b of document.querySelectorAll("#chart-intervals button")) {
      const on = b.dataset.interval === desk.interval;
      b.classList.toggle("on", on);
      b.setAttribute("aria-pressed", on ? "true" : "false");
    }
  }

  function setInterval_(interval) {
    if (!INTERVALS[interval] || interval === desk.interval) return;
    desk.interval = interval;
    try { localStorage.setItem(INTERVAL_KEY, interval); } catch (_) { /* disabled */ }
    showIntervals();
    reloadChart();
  }

  /** Forget the candles and ask the server for the selected symbol's klines. */
  function reloadChart() {
    desk.gen += 1;
    desk.bars = [];
    if (candles) candles.setData([]);
    desk.klines = "none";
    $("chart-note").textContent = "";
    if (!desk.symbol || !api.live()) return;
    const gen = desk.gen;
    desk.klines = "loading";
    const sent = send({ action: "get_klines", symbol: desk.symbol, interval: desk.interval,
      limit: KLINES_LIMIT }, {
      kind: "desk",
      onReply: (msg) => { if (gen === desk.gen && msg.type === "KLINES") onKlines(msg); },
      onError: (msg) => {
        if (gen !== desk.gen) return;
        desk.klines = "unavailable";
        $("chart-note").textContent = `no history (${msg.code}): live candles only`;
      },
    });
    if (!sent) desk.klines = "none";
  }

  function onKlines(msg) {
    const bars = [];
    for (const k of msg.klines || []) {
      const bar = { time: k[0] / 1000, open: Number(k[1]), high: Number(k[2]),
        low: Number(k[3]), close: Number(k[4]) };
      if (Number.isFinite(bar.open) && (!bars.length || bar.time > bars[bars.length - 1].time)) {
        bars.push(bar);
      }
    }
    // Candles built from trades while the request was out: newer ones are kept, the
    // one of the same time is merged (the klines know its open).
    const lastTime = bars.length ? bars[bars.length - 1].time : -Infinity;
    for (const live of desk.bars) {
      if (live.time > lastTime) bars.push(live);
      else if (live.time === lastTime) {
        const b = bars[bars.length - 1];
        b.high = Math.max(b.high, live.high);
        b.low = Math.min(b.low, live.low);
        b.close = live.close;
      }
    }
    desk.bars = bars.slice(-MAX_BARS);
    desk.klines = "loaded";
    if (candles) {
      candles.setData(desk.bars);
      chart.timeScale().scrollToRealTime();
    }
    drawMarkers();
  }

  /** One trade (price, time in ms) of the selected symbol into the current candle. */
  function tradeIntoBar(price, ms) {
    const t = bucket(ms);
    const bars = desk.bars;
    let bar = bars[bars.length - 1];
    if (bar && t < bar.time) return;          // older than the current candle
    if (!bar || t > bar.time) {
      if (bar && desk.barDirty && candles) candles.update({ ...bar });  // its last state
      bar = { time: t, open: price, high: price, low: price, close: price };
      bars.push(bar);
      if (bars.length > MAX_BARS) bars.shift();
    } else {
      bar.high = Math.max(bar.high, price);
      bar.low = Math.min(bar.low, price);
      bar.close = price;
    }
    desk.barDirty = true;   // drawn once in the next frame, however many trades came
  }

  function applyPrecision(symbol) {
    const info = desk.info.get(symbol);
    const f = info && info.filters ? filterOf(info, "PRICE_FILTER") : null;
    const tick = f ? Number(f.tickSize) : 0;
    if (candles && tick > 0) {
      const precision = Math.min(10, Math.max(0, Math.round(-Math.log10(tick))));
      candles.applyOptions({ priceFormat: { type: "price", precision, minMove: tick } });
    }
  }

  // -- fills and working orders on the chart ----------------------------------------
  function loadFillMarks() {
    desk.fillMarks = [];
    drawMarkers();
    if (!desk.symbol || !api.account()) return;
    const gen = desk.gen;
    const symbol = desk.symbol;
    send({ action: "get_fills", symbol, limit: MARKER_FILLS }, {
      kind: "desk",
      onReply: (msg) => {
        if (desk.symbol !== symbol || msg.type !== "FILLS") return;
        const known = new Set(desk.fillMarks.map((f) => f.key));
        for (const f of msg.fills || []) {
          const key = `f${f.fillId}`;
          if (!known.has(key)) {
            desk.fillMarks.push({ key, time: f.time, side: f.side, quantity: f.quantity,
              price: f.price });
          }
        }
        if (gen === desk.gen || desk.symbol === symbol) drawMarkers();
      },
      onError: () => { /* markers are a nicety: the fills panel reports errors */ },
    });
  }

  function drawMarkers() {
    if (!markers) return;
    const bars = desk.bars;
    if (!bars.length) { markers.setMarkers([]); return; }
    const first = bars[0].time;
    const last = bars[bars.length - 1].time;
    const list = desk.fillMarks
      .map((f) => ({ f, t: bucket(f.time) }))
      .filter(({ t }) => t >= first && t <= last)
      .sort((a, b) => a.t - b.t)
      .slice(-MAX_MARKERS)
      .map(({ f, t }) => ({
        time: t,
        position: f.side === "BUY" ? "belowBar" : "aboveBar",
        color: f.side === "BUY" ? colors.up : colors.down,
        shape: f.side === "BUY" ? "arrowUp" : "arrowDown",
        text: `${f.side === "BUY" ? "B" : "S"} ${fmtQty(f.quantity)}`,
      }));
    markers.setMarkers(list);
  }

  function drawPriceLines() {
    if (!candles) return;
    for (const line of desk.priceLines) candles.removePriceLine(line);
    desk.priceLines = [];
    if (!desk.symbol) return;
    for (const o of api.openOrders()) {
      if (o.symbol !== desk.symbol) continue;
      const color = o.side === "BUY" ? colors.up : colors.down;
      const label = `#${o.orderId} ${o.side} ${o.type}`;
      if (o.price !== null && o.price !== undefined) {
        desk.priceLines.push(candles.createPriceLine({ price: o.price, color, lineWidth: 1,
          lineStyle: 0, axisLabelVisible: true, title: label }));
      }
      const stop = o.currentStopPrice ?? o.stopPrice;
      if (stop !== null && stop !== undefined) {
        desk.priceLines.push(candles.createPriceLine({ price: stop, color: colors.yellow,
          lineWidth: 1, lineStyle: 2, axisLabelVisible: true, title: `${label} stop` }));
      }
    }
  }

  // -- book and tape ----------------------------------------------------------------
  function bookRows(tbody) {
    if (tbody._cells) return tbody._cells;
    tbody._cells = [];
    for (let i = 0; i < BOOK_LEVELS; i++) {
      const row = h("tr", null, h("td", { class: "num" }), h("td", { class: "num" }),
        h("td", { class: "num" }));
      tbody.append(row);
      tbody._cells.push({ row, price: row.children[0], qty: row.children[1],
        total: row.children[2] });
    }
    return tbody._cells;
  }

  function drawBook() {
    const book = desk.book;
    const asks = book ? book.asks.slice(0, BOOK_LEVELS) : [];
    const bids = book ? book.bids.slice(0, BOOK_LEVELS) : [];
    const cum = (levels) => {
      let t = 0;
      return levels.map(([p, q]) => { t += q; return [p, q, t]; });
    };
    const a = cum(asks);
    const b = cum(bids);
    const max = Math.max(a.length ? a[a.length - 1][2] : 0, b.length ? b[b.length - 1][2] : 0);
    const fill = (cells, levels, reversed) => {
      for (let i = 0; i < BOOK_LEVELS; i++) {
        const c = cells[reversed ? BOOK_LEVELS - 1 - i : i];
        const lv = levels[i];
        c.row.hidden = !lv;
        if (!lv) continue;
        c.price.textContent = fmtPrice(lv[0]);
        c.qty.textContent = fmtQty(lv[1]);
        c.total.textContent = fmtQty(lv[2]);
        c.row.style.setProperty("--depth", `${max > 0 ? (100 * lv[2] / max).toFixed(1) : 0}%`);
      }
    };
    fill(bookRows($("book-asks")), a, true);
    fill(bookRows($("book-bids")), b, false);
    let spread = null;
    if (asks.length && bids.length) {   // to the decimals of the prices: no float noise
      const d = Math.min(8, Math.max(api.decimalsOf(asks[0][0]), api.decimalsOf(bids[0][0])));
      spread = (asks[0][0] - bids[0][0]).toFixed(d);
    }
    $("book-spread").textContent = spread === null ? (book ? "one-sided book" : "no book yet")
      : `spread ${spread}`;
  }

  /** New trades go on top as new rows; the rows already shown are not touched. */
  function drawTape() {
    const tbody = $("tape-rows");
    const fresh = desk.tapeNew.splice(0).slice(0, TAPE_ROWS);
    if (desk.tapeReset) {
      desk.tapeReset = false;
      tbody.replaceChildren();
    }
    const rows = fresh.map((t) => h("tr", null, h("td", { text: fmtTime(t.time) }),
      h("td", { class: "num " + (t.dir > 0 ? "up" : t.dir < 0 ? "down" : "flat"),
        text: fmtPrice(t.price) }),
      h("td", { class: "num", text: t.qty === null ? "—" : fmtQty(t.qty) })));
    tbody.prepend(...rows.reverse());
    while (tbody.childElementCount > TAPE_ROWS) tbody.lastElementChild.remove();
  }

  // -- the ticket: bid/ask, notional, fee, filters ------------------------------------------
  function filterOf(info, type) {
    return (info.filters || []).find((f) => f.filterType === type) || null;
  }

  function loadInfo(symbol) {
    if (!symbol || desk.info.has(symbol) || !api.live()) return;
    desk.info.set(symbol, { loading: true });
    send({ action: "get_symbol_info", symbol }, {
      kind: "desk",
      onReply: (msg) => {
        desk.info.set(symbol, msg);
        if (symbol === desk.symbol) applyPrecision(symbol);
        drawTicket();
      },
      onError: (msg) => {
        desk.info.set(symbol, { missing: `${msg.code}` });
        drawTicket();
      },
    });
  }

  function inputNumber(id) {
    const input = $(id);
    if (!input || input.hidden || input.closest("[hidden]")) return null;
    const v = Number(input.value);
    return input.value.trim() !== "" && Number.isFinite(v) ? v : null;
  }

  function multipleOf(v, step) {
    if (!(step > 0)) return true;
    const r = v / step;
    return Math.abs(r - Math.round(r)) < 1e-7;
  }

  function drawTicket() {
    const symbol = api.ticketSymbol();
    const m = symbol === desk.symbol ? desk.last : api.lastMarket(symbol);
    $("t-bid-price").textContent = m && m.bid !== null && m.bid !== undefined ? fmtPrice(m.bid) : "—";
    $("t-ask-price").textContent = m && m.ask !== null && m.ask !== undefined ? fmtPrice(m.ask) : "—";
    const side = api.ticketSide();
    const qty = inputNumber("t-quantity");
    const price = inputNumber("t-price") ?? inputNumber("br-entry-price") ?? inputNumber("t-stop")
      ?? (m ? (side === "BUY" ? m.ask : m.bid) ?? m.price : null);
    const notional = qty !== null && price !== null && price !== undefined ? qty * price : null;
    const info = desk.info.get(symbol);
    const quote = info && info.quoteAsset ? ` ${info.quoteAsset}` : "";
    $("t-notional").textContent = notional === null ? "—" : `${fmtMoney(notional)}${quote}`;
    $("t-fee").textContent = notional === null || FEE_BPS === null ? "—"
      : `${fmtMoney(notional * FEE_BPS / 10000)}${quote} (${FEE_BPS} bps)`;
    const warn = [];
    let text = "filters: —";
    if (info && info.missing) text = `filters: none known (${info.missing})`;
    else if (info && info.filters) {
      const parts = [];
      const pf = filterOf(info, "PRICE_FILTER");
      const lot = filterOf(info, "LOT_SIZE");
      const mn = filterOf(info, "NOTIONAL") || filterOf(info, "MIN_NOTIONAL");
      if (pf) parts.push(`tick ${Number(pf.tickSize)}`);
      if (lot) parts.push(`qty ${Number(lot.minQty)} – ${Number(lot.maxQty)} step ${Number(lot.stepSize)}`);
      if (mn) parts.push(`min notional ${Number(mn.minNotional)}`);
      text = parts.length ? `filters: ${parts.join(" · ")}` : "filters: none";
      if (lot && qty !== null) {
        if (qty < Number(lot.minQty)) warn.push(`quantity below ${Number(lot.minQty)} (LOT_SIZE)`);
        else if (qty > Number(lot.maxQty)) warn.push(`quantity above ${Number(lot.maxQty)} (LOT_SIZE)`);
        else if (!multipleOf(qty - Number(lot.minQty), Number(lot.stepSize))) {
          warn.push(`quantity not a multiple of ${Number(lot.stepSize)} (LOT_SIZE)`);
        }
      }
      const limit = inputNumber("t-price");
      if (pf && limit !== null && Number(pf.tickSize) > 0 && !multipleOf(limit, Number(pf.tickSize))) {
        warn.push(`price not a multiple of ${Number(pf.tickSize)} (PRICE_FILTER)`);
      }
      if (mn && notional !== null && notional < Number(mn.minNotional)) {
        warn.push(`notional below ${Number(mn.minNotional)} (${mn.filterType})`);
      }
    }
    $("ticket-filters").textContent = text;
    $("ticket-warn").textContent = warn.length ? `The server will refuse this: ${warn.join("; ")}.` : "";
  }

  function usePrice(which) {
    const symbol = api.ticketSymbol();
    const m = symbol === desk.symbol ? desk.last : api.lastMarket(symbol);
    const v = m ? m[which] : null;
    if (v === null || v === undefined) return;
    api.setTicketPrice(v);
  }

  // -- fill history --------------------------------------------------------------------
  function loadFills(before) {
    const f = desk.fills;
    if (!api.account()) return;
    f.loading = true;
    const cmd = { action: "get_fills", limit: FILLS_PAGE };
    if (before) cmd.before = before;
    send(cmd, {
      kind: "desk",
      onReply: (msg) => {
        f.loading = false;
        if (msg.type !== "FILLS") return;
        f.before = before;
        f.rows = msg.fills || [];
        f.nextBefore = msg.nextBefore;
        drawFills();
      },
      onError: (msg) => {
        f.loading = false;
        $("fills-page").textContent = `could not load fills: ${msg.code}`;
      },
    });
  }

  let fillsTimer = null;
  function refreshFillsSoon() {
    if (fillsTimer) return;
    fillsTimer = setTimeout(() => {
      fillsTimer = null;
      if (!desk.fills.before) loadFills(null);  // only the newest page follows new fills
    }, 250);
  }

  function drawFills() {
    const f = desk.fills;
    const tbody = $("fill-rows");
    tbody.replaceChildren(...f.rows.map((x) => {
      const realized = h("td", { class: "num", text: x.realizedPnl === null ? "—"
        : fmtMoney(x.realizedPnl, true) });
      if (x.realizedPnl) realized.classList.add(x.realizedPnl > 0 ? "up" : "down");
      return h("tr", { dataset: { fill: String(x.fillId) } },
        h("td", { text: String(x.fillId) }),
        h("td", { text: fmtTime(x.time) }),
        h("td", { text: x.symbol }),
        h("td", { class: x.side === "BUY" ? "side-long" : "side-short", text: x.side }),
        h("td", { class: "num", text: fmtQty(x.quantity) }),
        h("td", { class: "num", text: fmtPrice(x.price) }),
        h("td", { class: "num", text: `${fmtMoney(x.fee)} ${x.feeAsset || ""}`.trim() }),
        realized,
        h("td", { text: `#${x.orderId}` }));
    }));
    $("fills-empty").hidden = f.rows.length > 0;
    $("fills-older").disabled = !f.nextBefore;
    $("fills-newer").disabled = !f.before;
    $("fills-page").textContent = f.rows.length
      ? `fills #${f.rows[f.rows.length - 1].fillId} – #${f.rows[0].fillId}${f.before ? "" : " (newest)"}`
      : "";
  }

  function olderFills() {
    const f = desk.fills;
    if (!f.nextBefore) return;
    f.stack.push(f.before);
    loadFills(f.nextBefore);
  }

  function newerFills() {
    const f = desk.fills;
    if (!f.before) return;
    loadFills(f.stack.length ? f.stack.pop() : null);
  }

  function csvCell(v) {
    if (v === null || v === undefined) return "";
    const s = String(v);
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  }

  /** Every fill of the account, oldest first, as the CSV `tickdesk fills --csv` writes. */
  function downloadCsv() {
    if (!api.account()) { api.notice("Sign in first: fills belong to an account."); return; }
    const button = $("fills-csv");
    if (button.disabled) return;
    button.disabled = true;
    const all = [];
    let pages = 0;
    const finish = (error) => {
      button.disabled = false;
      button.textContent = "CSV";
      if (error) { api.notice(`CSV not written: ${error}`); return; }
      const cols = ["fillId", "time", "timeUtc", "orderId", "clientOrderId", "symbol", "side",
        "price", "quantity", "fee", "feeAsset", "realizedPnl"];
      const lines = [cols.join(",")];
      for (const x of all.reverse()) {
        lines.push([x.fillId, x.time, new Date(x.time).toISOString(), x.orderId, x.clientOrderId,
          x.symbol, x.side, x.price, x.quantity, x.fee, x.feeAsset, x.realizedPnl]
          .map(csvCell).join(","));
      }
      const blob = new Blob([lines.join("\r\n") + "\r\n"], { type: "text/csv" });
      const url = URL.createObjectURL(blob);
      const a = h("a", { href: url, download: `tickdesk-fills-${api.account()}.csv` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    };
    const page = (before) => {
      const cmd = { action: "get_fills", limit: CSV_PAGE };
      if (before) cmd.before = before;
      button.textContent = `CSV… ${all.length}`;
      const sent = send(cmd, {
        kind: "desk",
        onReply: (msg) => {
          if (msg.type !== "FILLS") return;
          all.push(...(msg.fills || []));
          pages += 1;
          if (msg.nextBefore && pages < CSV_MAX_PAGES) page(msg.nextBefore);
          else finish(null);
        },
        onError: (msg) => finish(`${msg.code}: ${msg.message}`),
        onLost: () => finish("the connection was lost"),
      });
      if (!sent) finish("not connected");
    };
    page(null);
  }

  // -- the equity curve ----------------------------------------------------------------
  function loadEquity() {
    if (!api.account()) return;
    send({ action: "get_equity_history", limit: EQUITY_SAMPLES }, {
      kind: "desk",
      onReply: (msg) => {
        if (msg.type !== "EQUITY_HISTORY") return;
        const hist = (msg.samples || []).map((s) => ({ time: Math.floor(s.time / 1000),
          value: s.equity }));
        const last = hist.length ? hist[hist.length - 1].time : -Infinity;
        desk.equity = hist.concat(desk.equity.filter((p) => p.live && p.time > last));
        drawEquity(true);
      },
      onError: (msg) => { $("equity-note").textContent = `no equity history: ${msg.code}`; },
    });
  }

  function equityPoint(equity, ms) {
    if (typeof equity !== "number") return;
    const t = Math.floor(ms / 1000);
    const pts = desk.equity;
    const last = pts[pts.length - 1];
    if (last && t < last.time) return;
    if (last && t === last.time) last.value = equity;
    else pts.push({ time: t, value: equity, live: true });
    if (pts.length > MAX_EQUITY_POINTS) pts.shift();
    desk.equityLive += 1;
    if (equitySeries) equitySeries.update({ time: t, value: equity });
    $("equity-last").textContent = fmtMoney(equity);
  }

  function drawEquity(all) {
    if (!equitySeries || !all) return;
    equitySeries.setData(desk.equity.map((p) => ({ time: p.time, value: p.value })));
    equityChart.timeScale().fitContent();
  }

  // -- selection ---------------------------------------------------------------------------
  function select(symbol) {
    if (!symbol || symbol === desk.symbol) return;
    const old = desk.symbol;
    if (old && api.live()) send({ action: "unsubscribe_book", symbol: old });
    desk.symbol = symbol;
    desk.prev = null;
    desk.last = api.lastMarket(symbol);
    desk.book = null;
    desk.tape = [];
    desk.tapeNew = [];
    desk.tapeReset = true;
    for (const id of ["chart-symbol", "book-symbol", "tape-symbol"]) $(id).textContent = symbol;
    $("chart-last").textContent = desk.last ? fmtPrice(desk.last.price) : "—";
    for (const row of document.querySelectorAll("#watch-rows tr")) {
      row.classList.toggle("selected", row.dataset.symbol === symbol);
    }
    if (api.live()) subscribeSelected();
    reloadChart();
    drawPriceLines();
    loadFillMarks();
    schedule("book", "tape", "ticket");
  }

  function subscribeSelected() {
    const symbol = desk.symbol;
    if (!symbol) return;
    send({ action: "subscribe_book", symbol }, {
      kind: "desk",
      onReply: () => { /* SUBSCRIBED; the snapshot follows */ },
      onError: (msg) => {
        if (symbol === desk.symbol) $("book-spread").textContent = `no book: ${msg.code}`;
      },
    });
    loadInfo(symbol);
  }

  // -- batched drawing ---------------------------------------------------------------------
  function schedule(...what) {
    for (const w of what) desk.dirty.add(w);
    if (desk.frame) return;
    desk.frame = requestAnimationFrame(() => {
      desk.frame = 0;
      const d = desk.dirty;
      desk.dirty = new Set();
      if (d.has("bar") && desk.barDirty && candles && desk.bars.length) {
        desk.barDirty = false;
        candles.update({ ...desk.bars[desk.bars.length - 1] });
      }
      if (d.has("book")) drawBook();
      if (d.has("tape")) drawTape();
      if (d.has("ticket")) drawTicket();
      if (d.has("last") && desk.last) $("chart-last").textContent = fmtPrice(desk.last.price);
    });
  }

  // -- market data of the selected symbol -------------------------------------------------------
  function onMarket(msg) {
    if (msg.symbol !== desk.symbol) {
      if (msg.symbol === api.ticketSymbol()) schedule("ticket");
      return;
    }
    const prev = desk.last;
    desk.last = msg;
    schedule("last", "ticket");
    if (!prev || msg.seq === prev.seq) return;  // the snapshot, or a repeat of it
    const volUp = msg.volume !== null && prev.volume !== null && msg.volume > prev.volume;
    const traded = volUp || (msg.volume === null && msg.price !== prev.price);
    if (!traded) return;                          // a book or 24 h ticker change only
    tradeIntoBar(msg.price, msg.eventTime);
    const trade = { time: msg.eventTime, price: msg.price,
      qty: volUp ? Number((msg.volume - prev.volume).toPrecision(12)) : null,
      dir: Math.sign(msg.price - prev.price) };
    desk.tape.unshift(trade);
    if (desk.tape.length > TAPE_ROWS) desk.tape.length = TAPE_ROWS;
    desk.tapeNew.push(trade);
    if (desk.tapeNew.length > TAPE_ROWS) desk.tapeNew.shift();
    schedule("tape", "bar");
  }

  // -- keyboard shortcuts (desktop) ------------------------------------------------------------
  function toggleShortcuts(show) {
    const box = $("shortcuts");
    box.hidden = show === undefined ? !box.hidden : !show;
    if (!box.hidden) $("shortcuts-close").focus();
  }

  function onKey(ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const t = ev.target;
    const typing = t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA");
    if (ev.key === "Escape") {
      toggleShortcuts(false);
      if (typing) t.blur();
      return;
    }
    if (typing) return;
    const k = ev.key;
    const symbols = api.watched();
    let handled = true;
    if (k === "/") $("watch-symbol").focus();
    else if (k === "?") toggleShortcuts();
    else if (k === "j" || k === "k") {
      if (symbols.length) {
        const i = symbols.indexOf(desk.symbol);
        const next = k === "j" ? (i + 1) % symbols.length : (i - 1 + symbols.length) % symbols.length;
        api.selectSymbol(symbols[i < 0 ? 0 : next]);
      }
    } else if (k >= "1" && k <= String(INTERVAL_KEYS.length)) setInterval_(INTERVAL_KEYS[Number(k) - 1]);
    else if (k === "b" || k === "s") {
      api.setTicketSide(k === "b" ? "BUY" : "SELL");
      $("t-quantity").focus();
      $("t-quantity").select();
    } else if (k === "m" || k === "l") api.setTicketType(k === "m" ? "MARKET" : "LIMIT");
    else if (k === "o") $("sec-orders").scrollIntoView();
    else if (k === "f") $("sec-fills").scrollIntoView();
    else handled = false;
    if (handled) ev.preventDefault();
  }

  // -- wiring ---------------------------------------------------------------------------------
  makeCharts();
  showIntervals();
  drawBook();
  drawFills();
  for (const b of document.querySelectorAll("#chart-intervals button")) {
    b.addEventListener("click", () => setInterval_(b.dataset.interval));
  }
  $("fills-older").addEventListener("click", olderFills);
  $("fills-newer").addEventListener("click", newerFills);
  $("fills-csv").addEventListener("click", downloadCsv);
  $("t-bid").addEventListener("click", () => usePrice("bid"));
  $("t-ask").addEventListener("click", () => usePrice("ask"));
  $("shortcuts-open").addEventListener("click", () => toggleShortcuts());
  $("shortcuts-close").addEventListener("click", () => toggleShortcuts(false));
  document.addEventListener("keydown", onKey);

  return {
    /** CONNECTED on a (new) socket: subscribe the book again (unless ``restoring``: the
     * server restores it, see onSubscriptions), reload the candles. */
    onConnected(restoring) {
      desk.info.forEach((v, k) => { if (v.loading) desk.info.delete(k); });
      if (desk.symbol) {
        if (!restoring) subscribeSelected();
        reloadChart();
      }
    },
    /** The books the server restored after a reconnect (null: none): keep the
     * selected symbol's, drop the others, subscribe it if it was not among them. */
    onSubscriptions(books) {
      const restored = new Set(books || []);
      for (const s of restored) if (s !== desk.symbol) send({ action: "unsubscribe_book", symbol: s });
      if (!desk.symbol) return;
      if (restored.has(desk.symbol)) loadInfo(desk.symbol);
      else subscribeSelected();
    },
    /** The connection's account is known (open mode, or after auth). */
    onAccount() {
      desk.fills.before = null;
      desk.fills.stack = [];
      loadFills(null);
      loadEquity();
      loadFillMarks();
    },
    onMarket,
    onBook(msg) {
      if (msg.symbol !== desk.symbol) return;
      desk.book = msg;
      schedule("book");
    },
    onOrderUpdate(msg) {
      const o = msg.order || {};
      if (msg.executionType === "TRADE") {
        refreshFillsSoon();
        if (o.symbol === desk.symbol) {
          desk.fillMarks.push({ key: `o${o.orderId}-${o.filledQuantity}`, time: msg.timestamp,
            side: o.side, quantity: msg.lastQty ?? o.filledQuantity, price: msg.lastPrice });
          drawMarkers();
        }
      }
    },
    onOrdersChanged: drawPriceLines,
    onPortfolio(pf, ms) { if (pf) equityPoint(pf.equity, ms); },
    onTicketChanged() {
      const s = api.ticketSymbol();
      if (api.known(s)) loadInfo(s);   // not for every half-typed symbol
      schedule("ticket");
    },
    select,
    selected: () => desk.symbol,
    /** For the console and the tests: what the chart shows. */
    inspect() {
      const last = desk.bars[desk.bars.length - 1] || null;
      return {
        symbol: desk.symbol, interval: desk.interval, klines: desk.klines,
        bars: desk.bars.length, last: last ? { ...last } : null,
        firstBars: desk.bars.slice(0, 5).map((b) => ({ ...b })),
        markers: markers ? markers.markers().length : 0, priceLines: desk.priceLines.length,
        tape: desk.tape.length, bookLevels: desk.book ? desk.book.bids.length + desk.book.asks.length : 0,
        equityPoints: desk.equity.length, chart: Boolean(chart),
      };
    },
    /** A PNG data URL of the chart as drawn now (lightweight-charts' own screenshot). */
    chartImage() { return chart ? chart.takeScreenshot().toDataURL("image/png") : ""; },
  };
};
