//! G.711 and Opus (in progress).
