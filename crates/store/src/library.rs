//! The live response library: one row per file name (unique per tenant, ignoring case). The
//! content itself is the API's to keep, in the object store under its SHA-256.

use crate::SqlStore;
use crate::document::{Document, time};
use crate::error::{Result, StoreError};
use crate::sql::SqlValue;
use async_trait::async_trait;
use rampart_core::TenantId;
use rampart_core::audit::AuditContext;
use rampart_core::library::{LIBRARY_FILES, LibraryFile, name_key};

impl Document for LibraryFile {
    const TABLE: &'static str = "library_files";
    const ENTITY: &'static str = "LibraryFile";
    const KEY_COLUMN: &'static str = "file_key";
    const SET: &'static rampart_core::odata::EntitySet = &LIBRARY_FILES;

    fn key(&self) -> String {
        LibraryFile::key(self)
    }

    fn columns(&self) -> Vec<(&'static str, SqlValue)> {
        vec![
            ("file_name", SqlValue::Text(self.file_name.clone())),
            ("sha256", SqlValue::Text(self.sha256.clone())),
            ("creation_time", time(Some(self.creation_time))),
            ("last_updated_time", time(Some(self.last_updated_time))),
        ]
    }
}

/// What became of a [`LibraryStore::put_library_file`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LibraryPut {
    Created(LibraryFile),
    /// The name existed and the caller asked to replace it; `previous` is what it replaced.
    Replaced {
        file: LibraryFile,
        previous: LibraryFile,
    },
    /// The name exists and the caller did not ask to replace it: nothing was written.
    Exists(LibraryFile),
}

#[async_trait]
pub trait LibraryStore: Send + Sync {
    /// Stores `file` under its name. An existing file of that name is replaced only when
    /// `replace` is set; it keeps its creation time and creator.
    async fn put_library_file(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        file: LibraryFile,
        replace: bool,
    ) -> Result<LibraryPut>;
    /// The file of that name (ignoring case).
    async fn get_library_file(&self, tenant: TenantId, name: &str) -> Result<Option<LibraryFile>>;
    /// Deletes the file of that name; returns it, or `None` when there was none.
    async fn delete_library_file(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        name: &str,
    ) -> Result<Option<LibraryFile>>;
    /// Whether any library file of the tenant has this content.
    async fn library_content_in_use(&self, tenant: TenantId, sha256: &str) -> Result<bool>;
}

#[async_trait]
impl LibraryStore for SqlStore {
    async fn put_library_file(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        file: LibraryFile,
        replace: bool,
    ) -> Result<LibraryPut> {
        let key = file.key();
        if let Some(existing) = self.get_doc::<LibraryFile>(tenant, &key).await? {
            if !replace {
                return Ok(LibraryPut::Exists(existing));
            }
            let mut previous = None;
            let updated = self
                .update_doc::<LibraryFile>(ctx, tenant, &key, "Update", |stored| {
                    previous = Some(stored.clone());
                    *stored = LibraryFile {
                        creation_time: stored.creation_time,
                        created_by: stored.created_by.clone(),
                        ..file.clone()
                    };
                    Ok(())
                })
                .await?;
            return match (updated, previous) {
                (Some(file), Some(previous)) => Ok(LibraryPut::Replaced { file, previous }),
                // Deleted between the read and the update: store it anew.
                _ => self.create_library_file(ctx, tenant, file).await,
            };
        }
        self.create_library_file(ctx, tenant, file).await
    }

    async fn get_library_file(&self, tenant: TenantId, name: &str) -> Result<Option<LibraryFile>> {
        self.get_doc::<LibraryFile>(tenant, &name_key(name)).await
    }

    async fn delete_library_file(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        name: &str,
    ) -> Result<Option<LibraryFile>> {
        let key = name_key(name);
        let Some(file) = self.get_doc::<LibraryFile>(tenant, &key).await? else {
            return Ok(None);
        };
        Ok(self
            .delete_doc::<LibraryFile>(ctx, tenant, &key)
            .await?
            .then_some(file))
    }

    async fn library_content_in_use(&self, tenant: TenantId, sha256: &str) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM library_files WHERE tenant_id = $1 AND sha256 = $2",
        )
        .bind(tenant.to_string())
        .bind(sha256)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }
}

impl SqlStore {
    async fn create_library_file(
        &self,
        ctx: &AuditContext,
        tenant: TenantId,
        file: LibraryFile,
    ) -> Result<LibraryPut> {
        match self
            .insert_docs(ctx, tenant, std::slice::from_ref(&file))
            .await
        {
            Ok(()) => Ok(LibraryPut::Created(file)),
            // Someone stored the same name at the same moment.
            Err(StoreError::Conflict(_)) => Err(StoreError::Conflict(format!(
                "Library file {} is being uploaded by someone else; try again",
                file.file_name
            ))),
            Err(e) => Err(e),
        }
    }
}
