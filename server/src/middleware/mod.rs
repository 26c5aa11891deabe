//! Request middleware, outermost first: request id and tracing, security headers (with the
//! Content-Security-Policy), panics caught, the request timeout, input limits (body size, NUL
//! characters), CSRF origin check, the client's address, session resolution, and the status of
//! failed server functions.

pub mod client_ip;
pub mod csrf;
pub mod guard;
pub mod request_id;
pub mod rpc_status;
pub mod security_headers;
pub mod session;
