//! Keeps the sources alive: discovery, notification channels, re-seed.
