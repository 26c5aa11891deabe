//! The sandbox driven from outside: through async-stripe (as Remit uses it), through raw HTTP
//! for the wire format, and through its hosted pages as a browser would post them.

mod async_stripe;
mod conformance;
mod fidelity;
mod flows;
mod persistence;
mod support;
mod test_clocks;
mod webhooks;
mod wire;
