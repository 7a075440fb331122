//! Organizations and their roles.

use async_trait::async_trait;
use gatehouse_core::model::{AuditEvent, Org, Role};
use gatehouse_core::ports::{OrgStore, StoreResult};

use crate::rows::{OrgRow, RoleRow, models, to_json};
use crate::{Dialect, SqlStore};

for_each_dialect! {
    #[async_trait]
    impl OrgStore for SqlStore<D> {
        async fn insert_org(&self, org: &Org, roles: &[Role], audit: &AuditEvent) -> StoreResult<()> {
            let mut w = self.write().await?;
            sqlx::query("INSERT INTO orgs (id, slug, name, created_at) VALUES ($1, $2, $3, $4)")
                .bind(&org.id)
                .bind(&org.slug)
                .bind(&org.name)
                .bind(org.created_at)
                .execute(w.conn())
                .await
                .map_err(D::map_err)?;
            for r in roles {
                sqlx::query("INSERT INTO roles (org_id, name, permissions) VALUES ($1, $2, $3)")
                    .bind(&r.org_id)
                    .bind(&r.name)
                    .bind(to_json(&r.permissions))
                    .execute(w.conn())
                    .await
                    .map_err(D::map_err)?;
            }
            w.audit(audit).await?;
            w.commit().await
        }

        async fn org_by_id(&self, id: &str) -> StoreResult<Org> {
            self.one::<OrgRow, _>("SELECT * FROM orgs WHERE id = $1", id).await
        }

        async fn org_by_slug(&self, slug: &str) -> StoreResult<Org> {
            self.one::<OrgRow, _>("SELECT * FROM orgs WHERE slug = $1", slug).await
        }

        async fn list_orgs(&self) -> StoreResult<Vec<Org>> {
            let rows: Vec<OrgRow> = sqlx::query_as("SELECT * FROM orgs ORDER BY created_at, slug")
                .fetch_all(&self.pool)
                .await
                .map_err(D::map_err)?;
            models(rows)
        }

        async fn role(&self, org_id: &str, name: &str) -> StoreResult<Role> {
            let row: RoleRow = sqlx::query_as("SELECT * FROM roles WHERE org_id = $1 AND name = $2")
                .bind(org_id)
                .bind(name)
                .fetch_one(&self.pool)
                .await
                .map_err(D::map_err)?;
            row.try_into()
        }

        async fn list_roles(&self, org_id: &str) -> StoreResult<Vec<Role>> {
            self.all::<RoleRow, _>("SELECT * FROM roles WHERE org_id = $1 ORDER BY name", org_id)
                .await
        }
    }
}
