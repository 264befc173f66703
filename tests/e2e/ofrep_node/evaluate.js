// evaluate.js -- drives arbiter through the stock OpenFeature JavaScript SDKs
// and OFREP providers (run by tests/e2e/test_ofrep_sdk.py; prints one JSON
// document on stdout).
//
//   node evaluate.js server BASE TOKEN FLAG N   server SDK + OFREPProvider:
//        N units' details for FLAG, then the error cases
//   node evaluate.js web BASE TOKEN FLAG UNIT   web SDK + OFREPWebProvider:
//        bulk evaluation, then polling with If-None-Match (statuses seen)
'use strict';

const [mode, base, token, flag, arg] = process.argv.slice(2);
const headers = [['Authorization', 'Bearer ' + token]];

function detailsOf(d) {
  return {
    value: d.value === undefined ? null : d.value,
    variant: d.variant === undefined ? null : d.variant,
    reason: d.reason === undefined ? null : d.reason,
    errorCode: d.errorCode === undefined ? null : d.errorCode,
    flagMetadata: d.flagMetadata || {},
  };
}

async function server() {
  const { OpenFeature } = require('@openfeature/server-sdk');
  const { OFREPProvider } = require('@openfeature/ofrep-provider');
  await OpenFeature.setProviderAndWait(new OFREPProvider({ baseUrl: base, headers }));
  const client = OpenFeature.getClient();
  const n = Number(arg);
  const units = [];
  for (let i = 0; i < n; i++) {
    const unit = 'sdk-unit-' + i;
    const d = await client.getStringDetails(flag, 'code-default', { targetingKey: unit, country: 'fr' });
    units.push(Object.assign({ unit }, detailsOf(d)));
  }
  const notFound = detailsOf(await client.getStringDetails('no-such-flag', 'code-default', { targetingKey: 'u1' }));
  const noKey = detailsOf(await client.getStringDetails(flag, 'code-default', { country: 'fr' }));
  const boolWrongType = detailsOf(await client.getBooleanDetails(flag, true, { targetingKey: 'u1' }));
  await OpenFeature.close();
  return { units, notFound, noKey, boolWrongType };
}

async function web() {
  const { OpenFeature } = require('@openfeature/web-sdk');
  const { OFREPWebProvider } = require('@openfeature/ofrep-web-provider');
  const seen = [];
  const recording = async (url, init) => {
    const isRequest = typeof url === 'object' && url !== null && 'url' in url;
    const h = isRequest ? url.headers : new Headers((init && init.headers) || {});
    const href = isRequest ? url.url : String(url);
    const ifNoneMatch = h.get('If-None-Match');
    const r = await fetch(url, init);
    seen.push({ url: href, status: r.status, ifNoneMatch, etag: r.headers.get('ETag') });
    return r;
  };
  const provider = new OFREPWebProvider({
    baseUrl: base, headers, fetchImplementation: recording,
    pollInterval: 300, changeDetection: 'polling', cacheMode: 'disabled',
  });
  await OpenFeature.setContext({ targetingKey: arg });
  await OpenFeature.setProviderAndWait(provider);
  const client = OpenFeature.getClient();
  const first = detailsOf(client.getStringDetails(flag, 'code-default'));
  await new Promise((r) => setTimeout(r, 1500));
  const after = detailsOf(client.getStringDetails(flag, 'code-default'));
  await OpenFeature.close();
  return { first, after, requests: seen };
}

(mode === 'server' ? server() : web())
  .then((out) => { process.stdout.write(JSON.stringify(out), () => process.exit(0)); })
  .catch((e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); });
