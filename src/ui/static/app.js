// The console's entry point: a router on the address's fragment
// (#/keys, #/key/<key>, #/watch, #/cluster, #/leases). Each page module
// exports mount(main, param) and returns the function that unmounts it
// (stopping its timers and streams).
import * as keys from './keys.js';
import * as watch from './watch.js';
import * as cluster from './cluster.js';
import * as leases from './leases.js';

const kPages = { keys, key: keys, watch, cluster, leases };
let unmount = null;

function route() {
  const [, name = 'keys', param = ''] = /^#\/([a-z]+)\/?(.*)$/.exec(location.hash) || [];
  const page = kPages[name] || keys;
  const navName = name === 'key' || !kPages[name] ? 'keys' : name;
  for (const link of document.querySelectorAll('header nav a')) {
    link.classList.toggle('active', link.dataset.page === navName);
  }
  unmount?.();
  const main = document.getElementById('main');
  unmount = page.mount(main, name === 'key' ? param : '');
  document.body.dataset.page = name;
}

document.getElementById('origin').textContent = location.host;
window.addEventListener('hashchange', route);
route();
