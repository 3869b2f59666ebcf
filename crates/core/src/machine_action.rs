//! Machine actions (written by the machine-actions work item).
