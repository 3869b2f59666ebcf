//! Machines and device groups.

use crate::router::ApiRoutes;

pub fn add(r: ApiRoutes) -> ApiRoutes {
    r
}
