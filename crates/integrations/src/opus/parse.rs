//! OPUS XML parser (being written).
