// SPDX-License-Identifier: Apache-2.0

// squall.js as an ES module: `import Squall, { Client } from '/squall.mjs'` (or from "squall",
// the npm package). Types: squall.d.ts.
import './squall.js';

const Squall = globalThis.Squall;
export default Squall;
export const Client = Squall.Client;
export const TRANSPORTS = Squall.TRANSPORTS;
export const closeAdvice = Squall.closeAdvice;
export const version = Squall.version;
