//! A file sent as a download: its type, and a filename no header can be broken with.

use axum::{
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};

pub fn attachment(filename: &str, content_type: &str, content: Vec<u8>) -> Response {
    let disposition = format!("attachment; filename=\"{}\"", filename.replace(['"', '\\', '\r', '\n'], "_"));
    let mut response = content.into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}
