//! Business profile loading: the demo fixtures load, and every broken profile is rejected with
//! the exact `file:line:column: field.path` of the mistake.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod errors;
mod fixtures;
mod never_panics;
