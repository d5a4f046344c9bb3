// offramp embed: on any page, a banner while a site is under maintenance, and a
// dismissible notice (bottom left) for each unresolved incident and each maintenance in
// progress or starting within 24 hours.
//   <script src="https://status.example.com/embed.js" data-site="cloud" async></script>
// data-site: a component name, or several separated by commas; without it, all of them.
// It reads /api/v2/summary.json from the status host it was loaded from, at once and
// then every 30 s. A dismissed notice stays hidden until its incident gets an update.
(function () {
  'use strict';
  var me = document.currentScript;
  if (!me || !me.src || !window.fetch) return;
  var origin;
  try { origin = new URL(me.src).origin; } catch (e) { return; }
  var only = (me.getAttribute('data-site') || '').split(',')
    .map(function (s) { return s.trim(); })
    .filter(function (s) { return s.length > 0; });
  var DAY = 24 * 3600 * 1000;
  var bar = null;
  var box = null;

  function mine(components) {
    if (only.length === 0) return true;
    return (components || []).some(function (c) { return only.indexOf(c.id) >= 0 || only.indexOf(c.name) >= 0; });
  }
  function key(item) {
    var u = (item.incident_updates || [])[0];
    return 'offramp-dismissed:' + item.id + ':' + (u ? u.id : '');
  }
  function dismissed(item) {
    try { return window.localStorage.getItem(key(item)) === '1'; } catch (e) { return false; }
  }
  function dismiss(item) {
    try { window.localStorage.setItem(key(item), '1'); } catch (e) { /* private mode */ }
  }
  function whenReady(f) {
    if (document.body) { f(); } else { document.addEventListener('DOMContentLoaded', f); }
  }

  function banner(summary) {
    var down = (summary.components || []).filter(function (c) {
      return !c.group && c.status === 'under_maintenance' &&
        (only.length === 0 || only.indexOf(c.name) >= 0);
    });
    if (bar) { bar.remove(); bar = null; }
    if (down.length === 0) return;
    bar = document.createElement('div');
    bar.className = 'offramp-banner';
    bar.setAttribute('role', 'status');
    bar.style.cssText = 'position:relative;z-index:2147483647;padding:.7em 1em;' +
      'font:15px/1.4 system-ui,sans-serif;background:#0b63c5;color:#fff;text-align:center';
    var text = down.map(function (c) {
      return c.name + ' is under maintenance' + (c.description ? ': ' + c.description : '');
    }).join(' · ');
    bar.appendChild(document.createTextNode(text + ' '));
    var a = document.createElement('a');
    a.href = origin + '/';
    a.textContent = 'Status';
    a.style.color = '#fff';
    bar.appendChild(a);
    document.body.insertBefore(bar, document.body.firstChild);
  }

  function notice(item, kind) {
    var colors = { critical: '#cf222e', major: '#bc4c00', minor: '#9a6700', none: '#5e6c7a', maintenance: '#0b63c5' };
    var n = document.createElement('div');
    n.className = 'offramp-notice';
    n.setAttribute('role', 'status');
    n.setAttribute('data-id', item.id);
    n.style.cssText = 'position:relative;margin-top:.6em;padding:.8em 2.2em .8em 1em;background:#fff;color:#1d2125;' +
      'border:1px solid #dfe3e8;border-left:.35em solid ' + (colors[item.impact] || '#5e6c7a') + ';' +
      'border-radius:.5em;box-shadow:0 4px 14px rgba(0,0,0,.15);font:14px/1.4 system-ui,sans-serif';
    var title = document.createElement('strong');
    title.textContent = item.name;
    n.appendChild(title);
    var u = (item.incident_updates || [])[0];
    var line = document.createElement('div');
    var what = kind === 'maintenance'
      ? (item.status === 'in_progress' ? 'Maintenance in progress' : 'Scheduled maintenance, from ' +
         new Date(item.scheduled_for).toLocaleString())
      : item.status.charAt(0).toUpperCase() + item.status.slice(1);
    var body = u && u.body ? u.body : '';
    if (body.length > 280) body = body.slice(0, 277) + '…';
    line.textContent = what + (body ? ': ' + body : '');
    n.appendChild(line);
    var a = document.createElement('a');
    a.href = item.shortlink || (origin + '/');
    a.textContent = 'Details';
    a.style.color = '#0b63c5';
    n.appendChild(a);
    var x = document.createElement('button');
    x.type = 'button';
    x.setAttribute('aria-label', 'Dismiss');
    x.textContent = '×';
    x.style.cssText = 'position:absolute;top:.3em;right:.4em;border:0;background:none;font-size:1.3em;' +
      'line-height:1;cursor:pointer;color:#5e6c7a';
    x.addEventListener('click', function () { dismiss(item); n.remove(); });
    n.appendChild(x);
    return n;
  }

  function notices(summary) {
    var now = Date.now();
    var items = [];
    (summary.incidents || []).forEach(function (i) {
      if (i.status !== 'resolved' && mine(i.components)) items.push([i, 'incident']);
    });
    (summary.scheduled_maintenances || []).forEach(function (m) {
      var soon = m.status === 'in_progress' ||
        (m.status === 'scheduled' && new Date(m.scheduled_for).getTime() - now < DAY);
      if (soon && mine(m.components)) items.push([m, 'maintenance']);
    });
    items = items.filter(function (p) { return !dismissed(p[0]); });
    if (box) { box.remove(); box = null; }
    if (items.length === 0) return;
    box = document.createElement('div');
    box.className = 'offramp-notices';
    box.style.cssText = 'position:fixed;left:1em;bottom:1em;max-width:min(24em,calc(100vw - 2em));z-index:2147483647';
    items.forEach(function (p) { box.appendChild(notice(p[0], p[1])); });
    document.body.appendChild(box);
  }

  function refresh() {
    fetch(origin + '/api/v2/summary.json', { cache: 'no-store' })
      .then(function (r) { return r.json(); })
      .then(function (summary) {
        whenReady(function () { banner(summary); notices(summary); });
      })
      .catch(function () {});
  }
  refresh();
  setInterval(refresh, 30000);
})();
