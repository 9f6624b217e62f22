//! Queries, one file per table group. Each function takes anything that implements
//! [`Exec`](crate::db::Exec) (a transaction or a pooled connection) and is written once for
//! both backends with [`on_conn!`](crate::on_conn).

pub mod admin;
// example-app:begin
pub mod classes;
// example-app:end
pub mod emails;
pub mod jobs;
pub mod sessions;
pub mod throttle;
pub mod tokens;
pub mod users;

/// A page of rows and the count of all the rows it is a page of, read in one statement (one
/// round trip instead of a `count(*)` beside the page): the statement selects
/// `(select count(*) from ...) as total_count` beside each row's columns, which both databases
/// compute once per statement. An empty page has no row to carry the count, so `total` is
/// `None` then and [`PageRows::total_or`] counts on its own (an empty list, or a page past
/// the end). The admin's log and the example app's lists use it; the other lists still count
/// in a statement of their own.
pub struct PageRows<T> {
    pub rows: Vec<T>,
    total: Option<i64>,
}

impl<T> PageRows<T> {
    /// From rows read with [`Counted`].
    pub(crate) fn new<R: Into<T>>(rows: Vec<Counted<R>>) -> Self {
        let total = rows.first().map(|r| r.total_count);
        Self {
            rows: rows.into_iter().map(|r| r.row.into()).collect(),
            total,
        }
    }

    /// The count of all rows: the one read with the page, or `count` when the page is empty.
    pub async fn total_or(
        &self,
        count: impl Future<Output = sqlx::Result<i64>>,
    ) -> sqlx::Result<i64> {
        match self.total {
            Some(total) => Ok(total),
            None => count.await,
        }
    }
}

/// A row of type `R` with the `total_count` column beside it (see [`PageRows`]).
pub(crate) struct Counted<R> {
    row: R,
    total_count: i64,
}

impl<'r, R, Row> sqlx::FromRow<'r, Row> for Counted<R>
where
    Row: sqlx::Row,
    R: sqlx::FromRow<'r, Row>,
    i64: sqlx::Decode<'r, Row::Database> + sqlx::Type<Row::Database>,
    &'static str: sqlx::ColumnIndex<Row>,
{
    fn from_row(row: &'r Row) -> sqlx::Result<Self> {
        Ok(Self {
            row: R::from_row(row)?,
            total_count: row.try_get("total_count")?,
        })
    }
}
