//! Incidents and investigations.

use crate::router::ApiRoutes;

pub fn add(r: ApiRoutes) -> ApiRoutes {
    r
}
