//! The HTTP engine: hand-written HTTP/1.1 codec (sans-IO) and, later, the request pipeline.

pub mod h1;
