//! Graph inspection (in progress).
