// Click a query: its question, answer or error, steps and attempts, and
// the messages on its client's wire while it ran. Click a message: it in
// full (as far as the page keeps it). Anything else with a title: that.
(function () {
  'use strict';
  var runs = {};
  document.querySelectorAll('script.run-data').forEach(function (node) {
    runs[node.getAttribute('data-seed')] = JSON.parse(node.textContent);
  });

  function line(panel, text, cls) {
    var div = document.createElement('div');
    if (cls) { div.className = cls; }
    div.textContent = text;
    panel.appendChild(div);
    return div;
  }

  function showMessage(panel, run, j) {
    var w = run.wire[j];
    panel.textContent = '';
    line(panel, w[0] + ' ms  ' + run.clients[w[1]] + (w[3] ? ' sent to ' : ' received from ') + w[2] + ':');
    line(panel, w[4] + (w[5] ? '\n… ' + w[5] + ' more bytes (harness run --trace FILE has them all)' : ''));
  }

  function showQuery(panel, run, q) {
    panel.textContent = '';
    line(panel, 'query ' + q.i + ' (' + run.clients[q.client] + ') at ' + q.start_ms + ' ms, ' +
      q.latency_ms + ' ms, ' + q.attempts + ' attempt(s): ' + q.outcome);
    line(panel, 'question: ' + q.question);
    if (q.answer !== null) { line(panel, 'answer:\n' + q.answer); }
    if (q.error) { line(panel, 'error: ' + q.error); }
    if (q.expected) { line(panel, 'expected:\n' + q.expected); }
    q.steps.forEach(function (s) {
      line(panel, 'step ' + s.step + ': ' + s.server + '/' + s.tool + ' ' + JSON.stringify(s.arguments) +
        ' · ' + s.attempts + ' attempt(s) · ' + Math.round(s.latency_us / 1000) + ' ms · ' + s.outcome);
    });
    var end = q.start_ms + q.latency_ms;
    var shown = 0;
    run.wire.forEach(function (w, j) {
      if (w[1] !== q.client || w[0] < q.start_ms || w[0] > end) { return; }
      if (shown === 0) { line(panel, 'messages on ' + run.clients[q.client] + "'s wire meanwhile (any query's):"); }
      shown += 1;
      var a = line(panel, '  ' + w[0] + ' ms ' + w[2] + (w[3] ? ' < ' : ' > ') + w[4].slice(0, 110));
      a.className = 'msg';
      a.appendChild(document.createElement('a')).textContent = ' [show]';
      a.lastChild.setAttribute('data-w', String(j));
    });
  }

  document.addEventListener('click', function (event) {
    var section = event.target.closest('section.run');
    if (!section) { return; }
    var run = runs[section.querySelector('script.run-data').getAttribute('data-seed')];
    var panel = section.querySelector('.detail');
    var target = event.target.closest('[data-q],[data-w],[data-f],path.e,rect.brk');
    if (!target) { return; }
    section.querySelectorAll('.sel').forEach(function (n) { n.classList.remove('sel'); });
    if (target.hasAttribute('data-w')) {
      showMessage(panel, run, Number(target.getAttribute('data-w')));
      var tick = section.querySelector('line[data-w="' + target.getAttribute('data-w') + '"]');
      if (tick) { tick.classList.add('sel'); }
    } else if (target.hasAttribute('data-q')) {
      var i = Number(target.getAttribute('data-q'));
      var q = run.queries.filter(function (r) { return r.i === i; })[0];
      if (q) {
        showQuery(panel, run, q);
      } else {
        panel.textContent = target.querySelector('title').textContent;
      }
      target.classList.add('sel');
    } else {
      panel.textContent = target.querySelector('title').textContent;
    }
  });

  // Every query with data is drawn, and every run has its timeline.
  Object.keys(runs).forEach(function (seed) {
    var section = document.getElementById('seed-' + seed);
    runs[seed].queries.forEach(function (q) {
      if (!section.querySelector('g.q[data-q="' + q.i + '"]')) {
        throw new Error('seed ' + seed + ': query ' + q.i + ' is not drawn');
      }
    });
  });
  // With #selftest, click the first query, message and fault of every run
  // and check what the panel shows (CI's headless browser does this).
  if (location.hash === '#selftest') {
    document.querySelectorAll('section.run').forEach(function (section) {
      var panel = section.querySelector('.detail');
      [['g.q', 'query '], ['line.w', ' ms  '], ['g.f', ' ms']].forEach(function (check) {
        var node = section.querySelector(check[0]);
        if (!node) { return; }
        panel.textContent = '';
        node.dispatchEvent(new MouseEvent('click', { bubbles: true }));
        if (panel.textContent.indexOf(check[1]) < 0) {
          throw new Error(section.id + ': clicking ' + check[0] + ' showed ' + JSON.stringify(panel.textContent));
        }
      });
    });
    document.body.setAttribute('data-selftest', 'ok');
  }
  document.body.setAttribute('data-report-ok', '1');
})();
