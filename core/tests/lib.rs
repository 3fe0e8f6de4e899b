mod common;
mod dst;
mod model;
mod rfc5545;
mod scheduling;
