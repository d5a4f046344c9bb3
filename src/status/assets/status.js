// offramp status page: shows times in the visitor's local time and, on a maintenance
// page, polls the site's state and goes back to the page the visitor asked for as soon
// as the site is online again. The page works without it (meta refresh and links).
(function () {
  'use strict';
  var times = document.querySelectorAll('time[datetime]');
  for (var i = 0; i < times.length; i++) {
    var iso = times[i].getAttribute('datetime');
    var d = new Date(iso);
    if (!isNaN(d.getTime())) {
      times[i].textContent = d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
      times[i].title = iso;
    }
  }
  var site = document.getElementById('site');
  if (!site || site.getAttribute('data-state') !== 'offline') return;
  var poll = site.getAttribute('data-poll');
  var back = site.getAttribute('data-return');
  var busy = false;
  function check() {
    if (busy) return;
    busy = true;
    fetch(poll, { cache: 'no-store' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        busy = false;
        if (s && s.state === 'online') {
          if (back) { location.replace(back); } else { location.reload(); }
        }
      })
      .catch(function () { busy = false; });
  }
  setInterval(check, 3000);
})();
