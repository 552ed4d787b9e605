// Draws the trace page (trace.h): tooltips, the entropy-varentropy scatter and
// the timeline, from the JSON blob #trace-data. Builds every element with
// createElement / textContent, never from markup, so no token text can inject
// anything. When drawn, #trace carries data-tokens and data-points (the counts
// of token spans and scatter points) and data-errors (scripts that failed).
(function () {
  'use strict';
  var root = document.getElementById('trace');
  var errorCount = 0;
  root.setAttribute('data-errors', '0');

  function reportError(message) {
    errorCount += 1;
    root.setAttribute('data-errors', String(errorCount));
    var box = document.getElementById('errors');
    if (box) {
      box.hidden = false;
      var line = document.createElement('div');
      line.textContent = message;
      box.appendChild(line);
    }
  }
  window.addEventListener('error', function (e) {
    reportError('script error: ' + e.message + ' (line ' + e.lineno + ')');
  });

  var SVG_NS = 'http://www.w3.org/2000/svg';
  var data = JSON.parse(document.getElementById('trace-data').textContent);
  var tokens = data.tokens;
  var thr = data.meta.thresholds;
  var modeByKey = {};
  data.meta.modes.forEach(function (m) { modeByKey[m.key] = m; });
  var fallbackMode = modeByKey.MODE_UNSPECIFIED;

  // Proto3 JSON writes non-finite floats as strings ("NaN", "-Infinity").
  function num(v) {
    if (v === undefined || v === null) return undefined;
    return typeof v === 'string' ? Number(v) : v;
  }
  function modeOf(t) { return modeByKey[t.mode || 'MODE_UNSPECIFIED'] || fallbackMode; }
  function fmt(v) {
    if (v === undefined) return '-';
    if (!isFinite(v)) return String(v);
    if (Number.isInteger(v)) return String(v);
    var a = Math.abs(v);
    if (a >= 1000) return v.toFixed(0);
    if (a >= 100) return v.toFixed(1);
    if (a >= 0.001 || a === 0) return String(Number(v.toPrecision(3)));
    return v.toExponential(2);
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function svg(tag, attrs, parent) {
    var e = document.createElementNS(SVG_NS, tag);
    for (var k in attrs) {
      if (Object.prototype.hasOwnProperty.call(attrs, k)) e.setAttribute(k, attrs[k]);
    }
    if (parent) parent.appendChild(e);
    return e;
  }
  function svgText(parent, x, y, text, attrs) {
    var t = svg('text', attrs || {}, parent);
    t.setAttribute('x', x);
    t.setAttribute('y', y);
    t.textContent = text;
    return t;
  }
  function round(v) { return Math.round(v * 10) / 10; }

  // ---------------------------------------------------------------------------
  // Per-token values.
  var SIGNAL_ROWS = [
    ['entropy', 'entropy', 'bits'], ['varentropy', 'varentropy', 'bits\u00b2'],
    ['attn_entropy', 'attn entropy', 'bits'], ['attn_varentropy', 'attn varentropy', 'bits\u00b2'],
    ['attn_entropy_spread', 'attn entropy spread', ''], ['agreement', 'agreement', ''],
    ['interaction_strength', 'interaction strength', '']
  ];
  function signal(t, key) {
    var s = t.signals || {};
    var v = num(s[key]);
    // entropy and varentropy are proto3 scalars: absent means 0 when signals are.
    if (v === undefined && t.signals && (key === 'entropy' || key === 'varentropy')) v = 0;
    return v;
  }
  function param(t, key) { return num((t.params || {})[key]); }

  // ---------------------------------------------------------------------------
  // Tooltip.
  var tip = document.getElementById('tooltip');
  function fillTooltip(i) {
    var t = tokens[i];
    var m = modeOf(t);
    tip.textContent = '';
    tip.style.setProperty('--c', m.color);
    var head = el('div', 'tt-head');
    head.appendChild(el('span', 'badge', m.name));
    head.appendChild(el('span', '', '#' + (t.index !== undefined ? t.index : i) + '  \u00b7  id ' +
                        (t.id !== undefined ? t.id : 0)));
    if (t.inserted) head.appendChild(el('span', 'badge ins', 'inserted'));
    tip.appendChild(head);
    tip.appendChild(el('code', 'tt-text', JSON.stringify(t.text || '')));
    var table = el('table');
    function row(name, value, sep) {
      var tr = el('tr', sep ? 'sep' : '');
      tr.appendChild(el('td', '', name));
      tr.appendChild(el('td', '', value));
      table.appendChild(tr);
    }
    var lp = num(t.logprob);
    if (lp === undefined) lp = 0;
    row('logprob', fmt(lp) + ' nats  (p ' + (isFinite(lp) ? fmt(100 * Math.exp(lp)) + '%' : '-') + ')');
    var first = true;
    SIGNAL_ROWS.forEach(function (r) {
      var v = signal(t, r[0]);
      if (v === undefined) return;
      row(r[1], fmt(v) + (r[2] ? ' ' + r[2] : ''), first);
      first = false;
    });
    first = true;
    Object.keys(t.params || {}).forEach(function (k) {
      row(k, fmt(param(t, k)), first);
      first = false;
    });
    tip.appendChild(table);
  }
  function showTooltip(i, clientX, clientY) {
    fillTooltip(i);
    tip.hidden = false;
    var w = tip.offsetWidth, h = tip.offsetHeight;
    var x = clientX + 16, y = clientY + 16;
    if (x + w > window.innerWidth - 8) x = Math.max(8, clientX - w - 16);
    if (y + h > window.innerHeight - 8) y = Math.max(8, clientY - h - 16);
    tip.style.left = x + 'px';
    tip.style.top = y + 'px';
  }
  function hideTooltip() { tip.hidden = true; }

  // ---------------------------------------------------------------------------
  // Linked highlighting of token i in the text, the scatter and the timeline.
  var tokenSpans = [];
  Array.prototype.forEach.call(document.querySelectorAll('#text .tok'), function (s) {
    tokenSpans[Number(s.getAttribute('data-i'))] = s;
  });
  var points = [];
  var cursors = [];
  var highlighted = -1;
  function highlight(i) {
    if (highlighted === i) return;
    if (highlighted >= 0) {
      if (tokenSpans[highlighted]) tokenSpans[highlighted].classList.remove('hl');
      if (points[highlighted]) points[highlighted].classList.remove('hl');
    }
    highlighted = i;
    cursors.forEach(function (c) { c.update(i); });
    if (i < 0) return;
    if (tokenSpans[i]) tokenSpans[i].classList.add('hl');
    var p = points[i];
    if (p) {
      p.classList.add('hl');
      p.parentNode.appendChild(p);  // on top
    }
  }

  var text = document.getElementById('text');
  text.addEventListener('mouseover', function (e) {
    var s = e.target.closest ? e.target.closest('.tok') : null;
    if (!s) return;
    var i = Number(s.getAttribute('data-i'));
    highlight(i);
    showTooltip(i, e.clientX, e.clientY);
  });
  text.addEventListener('mousemove', function (e) {
    if (highlighted >= 0 && !tip.hidden) showTooltip(highlighted, e.clientX, e.clientY);
  });
  text.addEventListener('mouseleave', function () { highlight(-1); hideTooltip(); });

  // ---------------------------------------------------------------------------
  // Scales.
  function linearScale(d0, d1, r0, r1) {
    var f = function (v) { return r0 + (v - d0) / (d1 - d0 || 1) * (r1 - r0); };
    return f;
  }
  // sqrt spreads the low thresholds (0.1) away from the origin.
  function sqrtScale(d1, r0, r1) {
    var s = Math.sqrt(d1) || 1;
    return function (v) { return r0 + Math.sqrt(Math.max(0, v)) / s * (r1 - r0); };
  }
  var NICE = [0, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 10, 15, 20, 30, 50, 80, 100, 150, 200, 300, 500, 1000];
  function ticks(max, scale, minGap) {
    var out = [];
    var last = -Infinity;
    var candidates = NICE.filter(function (v) { return v <= max; });
    candidates.forEach(function (v) {
      var px = scale(v);
      if (Math.abs(px - last) >= minGap) { out.push(v); last = px; }
    });
    return out;
  }
  function linearTicks(min, max, count) {
    var span = max - min;
    if (!(span > 0)) return [min];
    var step = Math.pow(10, Math.floor(Math.log10(span / count)));
    var err = span / count / step;
    if (err >= 7.5) step *= 10; else if (err >= 3.5) step *= 5; else if (err >= 1.5) step *= 2;
    var out = [];
    for (var v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) {
      out.push(Number(v.toPrecision(12)));
    }
    return out;
  }

  // ---------------------------------------------------------------------------
  // Entropy-varentropy scatter.
  var scatterBox = document.getElementById('scatter');
  var scaleMode = 'sqrt';
  function drawScatter() {
    scatterBox.textContent = '';
    points = [];
    var W = Math.max(320, scatterBox.clientWidth);
    var H = Math.round(Math.min(600, Math.max(280, W * 0.86)));
    var m = { l: 46, r: 74, t: 30, b: 42 };
    var s = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, width: W, height: H,
                         role: 'img', 'aria-label': 'entropy-varentropy scatter' }, scatterBox);
    var maxH = 0, maxV = 0;
    tokens.forEach(function (t) {
      var h = signal(t, 'entropy'), v = signal(t, 'varentropy');
      if (isFinite(h)) maxH = Math.max(maxH, h);
      if (isFinite(v)) maxV = Math.max(maxV, v);
    });
    var xMax = Math.max(maxH, thr.high_entropy, thr.medium_entropy) * 1.08;
    var yMax = Math.max(maxV, thr.high_varentropy) * 1.08;
    var x0 = m.l, x1 = W - m.r, y0 = H - m.b, y1 = m.t;
    var xs = scaleMode === 'sqrt' ? sqrtScale(xMax, x0, x1) : linearScale(0, xMax, x0, x1);
    var ys = scaleMode === 'sqrt' ? sqrtScale(yMax, y0, y1) : linearScale(0, yMax, y0, y1);
    function cx(v) { return Math.min(x1, Math.max(x0, xs(v))); }
    function cy(v) { return Math.max(y1, Math.min(y0, ys(v))); }

    // Regions of the policy (first matching row wins, as in entropix.h).
    var g = svg('g', {}, s);
    function region(key, hx0, hx1, vy0, vy1) {
      var mm = modeByKey[key];
      svg('rect', { x: round(cx(hx0)), y: round(cy(vy1)), width: Math.max(0, round(cx(hx1) - cx(hx0))),
                    height: Math.max(0, round(cy(vy0) - cy(vy1))), fill: mm.color,
                    'fill-opacity': 0.08 }, g);
    }
    region('MODE_EXPLORE', 0, thr.high_entropy, thr.high_varentropy, yMax);
    region('MODE_RESAMPLE', thr.high_entropy, xMax, thr.high_varentropy, yMax);
    region('MODE_CLARIFY', thr.medium_entropy, xMax, 0, thr.low_varentropy);
    region('MODE_FLOWING', 0, thr.low_entropy, 0, thr.low_varentropy);

    // Grid and axes.
    var axis = svg('g', { 'class': 'axis' }, s);
    ticks(xMax, xs, 34).forEach(function (v) {
      var x = round(xs(v));
      svg('line', { x1: x, x2: x, y1: y0, y2: y1, 'class': 'gridline' }, axis);
      svgText(axis, x, y0 + 15, fmt(v), { 'text-anchor': 'middle' });
    });
    ticks(yMax, ys, 20).forEach(function (v) {
      var y = round(ys(v));
      svg('line', { x1: x0, x2: x1, y1: y, y2: y, 'class': 'gridline' }, axis);
      svgText(axis, x0 - 6, y + 3.5, fmt(v), { 'text-anchor': 'end' });
    });
    svg('rect', { x: x0, y: y1, width: x1 - x0, height: y0 - y1, fill: 'none', stroke: '#c9ced6' }, axis);
    var scaleNote = scaleMode === 'sqrt' ? ', \u221a scale' : '';
    svgText(s, (x0 + x1) / 2, H - 8, 'entropy H (bits' + scaleNote + ')',
            { 'text-anchor': 'middle', 'class': 'title' });
    var yl = svgText(s, 0, 0, 'varentropy V (bits\u00b2' + scaleNote + ')',
                     { 'text-anchor': 'middle', 'class': 'title' });
    yl.setAttribute('transform', 'translate(12 ' + (y0 + y1) / 2 + ') rotate(-90)');

    // Threshold lines, labelled outside the frame.
    var tl = svg('g', {}, s);
    var vlines = [['low', thr.low_entropy], ['medium', thr.medium_entropy], ['high', thr.high_entropy]];
    var lastLabelX = -Infinity;
    vlines.forEach(function (l) {
      var x = round(xs(l[1]));
      svg('line', { x1: x, x2: x, y1: y0, y2: y1, 'class': 'thr-line' }, tl);
      var lx = Math.max(x, lastLabelX + 64);
      svgText(tl, lx, y1 - 8, 'H ' + l[0] + ' ' + fmt(l[1]),
              { 'text-anchor': 'middle', 'class': 'thr-label' });
      lastLabelX = lx;
    });
    var hlines = [['low', thr.low_varentropy], ['high', thr.high_varentropy]];
    var lastLabelY = Infinity;
    hlines.forEach(function (l) {
      var y = round(ys(l[1]));
      svg('line', { x1: x0, x2: x1, y1: y, y2: y, 'class': 'thr-line' }, tl);
      var ly = Math.min(y + 3.5, lastLabelY - 13);
      svgText(tl, x1 + 6, ly, 'V ' + l[0] + ' ' + fmt(l[1]), { 'class': 'thr-label' });
      lastLabelY = ly;
    });

    // Points, in generation order.
    var pg = svg('g', {}, s);
    var r = tokens.length > 400 ? 3 : 4.5;
    tokens.forEach(function (t, i) {
      var h = signal(t, 'entropy'), v = signal(t, 'varentropy');
      if (h === undefined || v === undefined || isNaN(h) || isNaN(v)) return;
      var mm = modeOf(t);
      var c = svg('circle', { cx: round(cx(h)), cy: round(cy(v)), r: r, fill: mm.color,
                              'class': 'pt' + (t.inserted ? ' ins' : ''), 'data-i': i }, pg);
      points[i] = c;
      c.addEventListener('mouseenter', function (e) { highlight(i); showTooltip(i, e.clientX, e.clientY); });
      c.addEventListener('mouseleave', function () { highlight(-1); hideTooltip(); });
    });
    return pg.childNodes.length;
  }

  // ---------------------------------------------------------------------------
  // Timeline: a mode strip and one small panel per quantity, sharing x.
  var timelineBox = document.getElementById('timeline');
  var SERIES = [
    { name: 'temperature', get: function (t) { return param(t, 'temperature'); } },
    { name: 'top_k', get: function (t) { return param(t, 'top_k'); } },
    { name: 'top_p', get: function (t) { return param(t, 'top_p'); } },
    { name: 'min_p', get: function (t) { return param(t, 'min_p'); } },
    { name: 'entropy', unit: 'bits', get: function (t) { return signal(t, 'entropy'); },
      zero: true, lines: [['low', 'low_entropy'], ['medium', 'medium_entropy'], ['high', 'high_entropy']] },
    { name: 'varentropy', unit: 'bits\u00b2', get: function (t) { return signal(t, 'varentropy'); },
      zero: true, lines: [['low', 'low_varentropy'], ['high', 'high_varentropy']] }
  ];
  function drawTimeline() {
    timelineBox.textContent = '';
    cursors = [];
    var n = tokens.length;
    var W = Math.max(320, timelineBox.clientWidth);
    var m = { l: 122, r: 62, t: 4, b: 26 };
    var stripH = 14, panelH = 62, gap = 12;
    var shown = SERIES.filter(function (sr) {
      return tokens.some(function (t) { var v = sr.get(t); return v !== undefined && isFinite(v); });
    });
    var H = m.t + stripH + gap + shown.length * (panelH + gap) + m.b - gap;
    var s = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, width: W, height: H,
                         role: 'img', 'aria-label': 'per-token timeline' }, timelineBox);
    var x0 = m.l, x1 = W - m.r;
    var band = (x1 - x0) / Math.max(1, n);
    function xc(i) { return x0 + (i + 0.5) * band; }

    // Mode strip.
    var y = m.t;
    svgText(s, 0, y + stripH - 3, 'mode', { 'class': 'title' });
    var strip = svg('g', {}, s);
    tokens.forEach(function (t, i) {
      svg('rect', { x: round(x0 + i * band), y: y, width: Math.max(0.5, round(band + 0.05)),
                    height: stripH, fill: modeOf(t).color }, strip);
    });
    y += stripH + gap;

    var dots = n <= 300;
    shown.forEach(function (sr) {
      var vals = tokens.map(sr.get);
      var finite = vals.filter(function (v) { return v !== undefined && isFinite(v); });
      var lo = Math.min.apply(null, finite), hi = Math.max.apply(null, finite);
      if (sr.zero) lo = Math.min(0, lo);
      (sr.lines || []).forEach(function (l) { hi = Math.max(hi, thr[l[1]]); });
      if (!(hi > lo)) { var pad = Math.abs(hi) * 0.1 || 1; lo -= pad; hi += pad; }
      var span = hi - lo;
      lo = sr.zero ? lo : lo - span * 0.08;
      hi += span * 0.08;
      var ys = linearScale(lo, hi, y + panelH, y);
      var g = svg('g', {}, s);
      svg('rect', { x: x0, y: y, width: x1 - x0, height: panelH, fill: '#fbfbfc', stroke: '#e3e6eb' }, g);
      svgText(g, 0, y + 13, sr.name, { 'class': 'title' });
      if (sr.unit) svgText(g, 0, y + 27, sr.unit, {});
      var tk = linearTicks(lo, hi, 2);
      tk.forEach(function (v) {
        var ty = round(ys(v));
        if (ty < y + 4 || ty > y + panelH - 2) return;
        svg('line', { x1: x0, x2: x1, y1: ty, y2: ty, 'class': 'gridline' }, g);
        svgText(g, x0 - 4, ty + 3.5, fmt(v), { 'text-anchor': 'end' });
      });
      // Threshold lines, labelled at the right end unless too close to the
      // label above (low thresholds sit near 0).
      var lastLabelY = -Infinity;
      (sr.lines || []).slice().reverse().forEach(function (l) {
        var ty = round(ys(thr[l[1]]));
        svg('line', { x1: x0, x2: x1, y1: ty, y2: ty, 'class': 'thr-line' }, g);
        if (ty - lastLabelY < 11) return;
        svgText(g, x1 + 5, ty + 3.5, l[0] + ' ' + fmt(thr[l[1]]), { 'class': 'thr-label' });
        lastLabelY = ty;
      });
      var d = '';
      var pen = false;
      vals.forEach(function (v, i) {
        if (v === undefined || !isFinite(v)) { pen = false; return; }
        d += (pen ? 'L' : 'M') + round(xc(i)) + ' ' + round(ys(v));
        pen = true;
      });
      if (d) svg('path', { d: d, 'class': 'series', 'stroke-width': band < 2 ? 0.8 : 1.3 }, g);
      if (dots) {
        vals.forEach(function (v, i) {
          if (v === undefined || !isFinite(v)) return;
          svg('circle', { cx: round(xc(i)), cy: round(ys(v)), r: 2.4, fill: modeOf(tokens[i]).color,
                          'class': 'dot' }, g);
        });
      }
      y += panelH + gap;
    });

    // x axis: token index.
    var bottom = y - gap;
    var axis = svg('g', { 'class': 'axis' }, s);
    linearTicks(0, Math.max(1, n - 1), Math.max(2, Math.floor((x1 - x0) / 70))).forEach(function (v) {
      if (v > n - 1 || !Number.isInteger(v)) return;
      svgText(axis, round(xc(v)), bottom + 14, String(v), { 'text-anchor': 'middle' });
    });
    svgText(s, 0, bottom + 14, 'token', { 'class': 'title' });

    // Cursor and hover.
    var cursor = svg('line', { x1: 0, x2: 0, y1: m.t, y2: bottom, 'class': 'cursor', visibility: 'hidden' }, s);
    cursors.push({ update: function (i) {
      if (i < 0) { cursor.setAttribute('visibility', 'hidden'); return; }
      var cxv = round(xc(i));
      cursor.setAttribute('x1', cxv);
      cursor.setAttribute('x2', cxv);
      cursor.setAttribute('visibility', 'visible');
    } });
    var overlay = svg('rect', { x: x0, y: m.t, width: x1 - x0, height: bottom - m.t, 'class': 'overlay' }, s);
    function indexAt(e) {
      var box = s.getBoundingClientRect();
      var px = (e.clientX - box.left) * (W / box.width);
      return Math.max(0, Math.min(n - 1, Math.floor((px - x0) / band)));
    }
    overlay.addEventListener('mousemove', function (e) {
      if (!n) return;
      var i = indexAt(e);
      highlight(i);
      showTooltip(i, e.clientX, e.clientY);
    });
    overlay.addEventListener('mouseleave', function () { highlight(-1); hideTooltip(); });
  }

  // ---------------------------------------------------------------------------
  var scaleButtons = document.querySelectorAll('#scatter-scale button');
  Array.prototype.forEach.call(scaleButtons, function (b) {
    b.addEventListener('click', function () {
      scaleMode = b.getAttribute('data-scale');
      Array.prototype.forEach.call(scaleButtons, function (o) {
        o.setAttribute('aria-pressed', String(o === b));
      });
      drawAll();
    });
  });

  function drawAll() {
    try {
      highlight(-1);
      var drawn = drawScatter();
      drawTimeline();
      root.setAttribute('data-tokens', String(document.querySelectorAll('#text .tok').length));
      root.setAttribute('data-points', String(drawn));
    } catch (e) {
      reportError('drawing failed: ' + (e && e.stack ? e.stack : e));
    }
  }
  var lastWidth = -1;
  var pending = 0;
  window.addEventListener('resize', function () {
    if (pending) window.clearTimeout(pending);
    pending = window.setTimeout(function () {
      pending = 0;
      if (document.body.clientWidth !== lastWidth) { lastWidth = document.body.clientWidth; drawAll(); }
    }, 120);
  });
  lastWidth = document.body.clientWidth;
  drawAll();

  // #tip=I opens token I's tooltip beside its span, as hovering it would (for
  // links into a trace, and for the browser test's screenshot).
  var tipMatch = /^#tip=(\d+)$/.exec(window.location.hash);
  if (tipMatch && tokenSpans[Number(tipMatch[1])]) {
    var i = Number(tipMatch[1]);
    var box = tokenSpans[i].getBoundingClientRect();
    highlight(i);
    showTooltip(i, box.right - 8, box.bottom - 8);
  }
})();
