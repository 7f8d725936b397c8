//! Recording and alerting rules for Vigil.
//!
//! Not built yet: rule files, group scheduling, alert state and the Alertmanager
//! notifier arrive with their own issue. The crate exists so the workspace has its
//! final shape and the dependency direction (rules → query → storage) is fixed.
