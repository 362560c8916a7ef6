//! Renderers: the report types (`report/`) turned into bytes for people (text tables, one
//! HTML page) or programs (CSV). They lay out what they are given and compute nothing, and
//! write into any `Write`.

pub mod csv;
pub mod html;
pub mod lun_text;
pub mod text;
