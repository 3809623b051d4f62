'use strict';
// Never used in a browser with Web Crypto (every supported one): fhirclient checks
// globalThis.crypto first.
module.exports = { default: undefined };
