//! In-place SRTP and SRTCP (in progress).
