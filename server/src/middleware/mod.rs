//! Request middleware, outermost first: request id and tracing, security headers, CSRF
//! origin check, the client's address, session resolution, and the status of failed server
//! functions.

pub mod client_ip;
pub mod csrf;
pub mod request_id;
pub mod rpc_status;
pub mod security_headers;
pub mod session;
