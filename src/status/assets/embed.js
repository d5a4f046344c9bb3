// offramp embed: shows a banner on any page while a site is under maintenance.
//   <script src="https://status.example.com/embed.js" data-site="cloud" async></script>
// data-site: a site name, or several separated by commas; without it, any site.
// It reads /api/v2/summary.json from the status host it was loaded from.
(function () {
  'use strict';
  var me = document.currentScript;
  if (!me || !me.src || !window.fetch) return;
  var origin;
  try { origin = new URL(me.src).origin; } catch (e) { return; }
  var only = (me.getAttribute('data-site') || '').split(',')
    .map(function (s) { return s.trim(); })
    .filter(function (s) { return s.length > 0; });
  fetch(origin + '/api/v2/summary.json', { cache: 'no-store' })
    .then(function (r) { return r.json(); })
    .then(function (summary) {
      var down = (summary.components || []).filter(function (c) {
        return c.status !== 'operational' && (only.length === 0 || only.indexOf(c.name) >= 0);
      });
      if (down.length === 0) return;
      var bar = document.createElement('div');
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
      var show = function () { document.body.insertBefore(bar, document.body.firstChild); };
      if (document.body) { show(); } else { document.addEventListener('DOMContentLoaded', show); }
    })
    .catch(function () {});
})();
