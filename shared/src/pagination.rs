//! One pagination type for HTML and JSON lists: `count`, `next`, `previous` and `results`,
//! the shape Django REST framework's page-number pagination gives.
//!
//! [`PageRequest::parse`] turns `?page=N&page_size=M` into a checked request (400 with a clear
//! message for 0, negatives, non-numbers and sizes over [`MAX_PAGE_SIZE`]); [`Page::new`] checks
//! it against the row count (404 past the end, as DRF does). Links are the caller's business:
//! the web crate builds absolute `next`/`previous` URLs from the public request URL.

use serde::Serialize;

use crate::error::{Error, Result};

pub const DEFAULT_PAGE_SIZE: u32 = 20;
pub const MAX_PAGE_SIZE: u32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    page: u32,
    page_size: u32,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            page: 1,
            page_size: DEFAULT_PAGE_SIZE,
        }
    }
}

impl PageRequest {
    /// From the raw query values; absent means the default. A value that is present must be a
    /// number, as the API's schema says: `?page=` is a 400, not page 1 (no form of ours sends
    /// an empty page, so only a hand-made or generated URL can).
    pub fn parse(page: Option<&str>, page_size: Option<&str>) -> Result<Self> {
        let number = |name: &str, raw: Option<&str>, default: u32| -> Result<u32> {
            match raw {
                None => Ok(default),
                Some(raw) => match raw.parse::<u32>() {
                    Ok(n) if n >= 1 => Ok(n),
                    _ => Err(Error::BadRequest(format!(
                        "{name} must be a whole number from 1 (got {raw:?})"
                    ))),
                },
            }
        };
        let page = number("page", page, 1)?;
        let page_size = number("page_size", page_size, DEFAULT_PAGE_SIZE)?;
        if page_size > MAX_PAGE_SIZE {
            return Err(Error::BadRequest(format!(
                "page_size must be at most {MAX_PAGE_SIZE} (got {page_size})"
            )));
        }
        Ok(Self { page, page_size })
    }

    pub fn page(&self) -> u32 {
        self.page
    }
    pub fn page_size(&self) -> u32 {
        self.page_size
    }
    /// For SQL `limit`.
    pub fn limit(&self) -> i64 {
        self.page_size.into()
    }
    /// For SQL `offset`.
    pub fn offset(&self) -> i64 {
        (i64::from(self.page) - 1) * i64::from(self.page_size)
    }

    /// Refuses a page past the end before any rows are read: 404, as DRF answers. Page 1 of
    /// an empty list exists (it is empty).
    pub fn check(&self, count: i64) -> Result<()> {
        let total = total_pages(count, self.page_size);
        if i64::from(self.page) > total {
            let pages = if total == 1 {
                "is 1 page".to_owned()
            } else {
                format!("are {total} pages")
            };
            return Err(Error::NotFound(format!(
                "page {} does not exist; there {pages}",
                self.page
            )));
        }
        Ok(())
    }
}

fn total_pages(count: i64, page_size: u32) -> i64 {
    // Not `(count + size - 1) / size`, which overflows for a count near i64::MAX.
    let (count, size) = (count.max(0), i64::from(page_size));
    (count / size + i64::from(count % size != 0)).max(1)
}

/// One page of a list, with what a client needs to walk it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    pub count: i64,
    pub page: u32,
    pub page_size: u32,
    pub total_pages: i64,
    pub results: Vec<T>,
}

impl<T> Page<T> {
    pub fn new(request: PageRequest, count: i64, results: Vec<T>) -> Self {
        Self {
            count,
            page: request.page,
            page_size: request.page_size,
            total_pages: total_pages(count, request.page_size),
            results,
        }
    }

    pub fn has_next(&self) -> bool {
        i64::from(self.page) < self.total_pages
    }
    pub fn has_previous(&self) -> bool {
        self.page > 1
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            count: self.count,
            page: self.page,
            page_size: self.page_size,
            total_pages: self.total_pages,
            results: self.results.into_iter().map(f).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_pages_rounds_up_without_overflowing() {
        assert_eq!(total_pages(0, 20), 1);
        assert_eq!(total_pages(20, 20), 1);
        assert_eq!(total_pages(21, 20), 2);
        assert_eq!(total_pages(-5, 20), 1);
        assert_eq!(total_pages(i64::MAX, 1), i64::MAX);
        assert_eq!(total_pages(i64::MAX, 100), i64::MAX / 100 + 1);
    }

    #[test]
    fn page_and_size_default_and_parse() {
        assert_eq!(
            PageRequest::parse(None, None).unwrap(),
            PageRequest::default()
        );
        let r = PageRequest::parse(Some("3"), Some("10")).unwrap();
        assert_eq!(
            (r.page(), r.page_size(), r.limit(), r.offset()),
            (3, 10, 10, 20)
        );
        assert_eq!(
            PageRequest::parse(None, Some("100")).unwrap().page_size(),
            100
        );
    }

    #[test]
    fn bad_values_are_clear_400s() {
        for (page, size, needle) in [
            (Some("0"), None, "page must be a whole number from 1"),
            (
                Some(""),
                None,
                "page must be a whole number from 1 (got \"\")",
            ),
            (Some(" 2"), None, "page must be"),
            (None, Some(""), "page_size must be a whole number"),
            (Some("-1"), None, "page must be"),
            (Some("two"), None, "page must be"),
            (Some("1.5"), None, "page must be"),
            (Some("99999999999"), None, "page must be"),
            (None, Some("0"), "page_size must be a whole number"),
            (None, Some("-5"), "page_size must be"),
            (None, Some("ten"), "page_size must be"),
            (None, Some("101"), "page_size must be at most 100"),
        ] {
            match PageRequest::parse(page, size) {
                Err(Error::BadRequest(m)) => assert!(m.contains(needle), "{page:?} {size:?}: {m}"),
                other => panic!("{page:?} {size:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_page_past_the_end_is_404_but_page_one_of_nothing_exists() {
        let page = |n: &str| PageRequest::parse(Some(n), Some("10")).unwrap();
        assert!(page("1").check(0).is_ok());
        assert!(page("3").check(21).is_ok());
        match page("4").check(30) {
            Err(Error::NotFound(m)) => assert_eq!(m, "page 4 does not exist; there are 3 pages"),
            other => panic!("{other:?}"),
        }
        match page("2").check(0) {
            Err(Error::NotFound(m)) => assert_eq!(m, "page 2 does not exist; there is 1 page"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_page_knows_its_neighbours() {
        let p = Page::new(
            PageRequest::parse(Some("2"), Some("10")).unwrap(),
            25,
            vec![0; 10],
        );
        assert_eq!(p.total_pages, 3);
        assert!(p.has_next() && p.has_previous());
        let last = Page::new(
            PageRequest::parse(Some("3"), Some("10")).unwrap(),
            25,
            vec![0; 5],
        );
        assert!(!last.has_next());
    }
}
