// Live updates: the server sends the prefix that changed; the page fetches
// that section again. Elections' leaders are remembered from the first
// load, so changes of leadership seen since the page opened are listed.
(function () {
  const leaders = {};
  function noteLeaders(root) {
    root.querySelectorAll('.hold').forEach(function (el) {
      const name = el.dataset.name, leader = el.dataset.leader;
      if (name in leaders && leaders[name] !== leader) {
        const li = document.createElement('li');
        li.textContent = new Date().toLocaleTimeString() + ' ' + name + ': ' +
          (leaders[name] || '(none)') + ' → ' + (leader || '(none)');
        const ul = document.getElementById('changes');
        if (ul) ul.prepend(li);
      }
      leaders[name] = leader;
    });
  }
  noteLeaders(document);
  const sections = document.querySelectorAll('section.prefix');
  if (!sections.length || !window.EventSource) return;
  const cfg = document.querySelector('section[data-reload]');
  const es = new EventSource(cfg ? 'events?config=' + encodeURIComponent(cfg.dataset.prefix.replace(/\/$/, '')) : 'events');
  let opened = false;
  // "open" comes once the server watches: what changed since the page
  // was read (or during a reconnect) is fetched then.
  // body[data-live] tells (tests, too) that the page is following etcd.
  es.addEventListener('open', function () {
    const fetched = [];
    sections.forEach(function (sec) { if (opened || !sec.dataset.reload) fetched.push(refresh(sec)); });
    opened = true;
    Promise.all(fetched).then(function () { document.body.dataset.live = '1'; });
  });
  es.addEventListener('change', function (ev) {
    sections.forEach(function (sec) {
      if (sec.dataset.prefix === ev.data) refresh(sec);
    });
  });
  function refresh(sec) {
    if (sec.dataset.reload) { location.reload(); return Promise.resolve(); }
    return fetch(sec.dataset.src).then(function (r) { return r.text(); }).then(function (html) {
      sec.innerHTML = html;
      noteLeaders(sec);
    });
  }
})();
