//! Machine actions over HTTP (written by the machine-actions work item).
