//! The departments, one module each (migrations, `apply`, queries, report), and the registry
//! that lists them: the one place a department is added.

pub mod assembly;
pub mod billing;
pub mod customers;
pub mod dashboard;
pub mod format;
pub mod mailer;
pub mod shipping;
pub mod warehouse;

/// Order events for unit tests, here and in the layers above (the page's event list).
#[cfg(test)]
pub(crate) mod fixtures;

pub use assembly::Assembly;
pub use billing::Billing;
pub use dashboard::Dashboard;
pub use mailer::Mailer;
pub use shipping::Shipping;
pub use warehouse::Warehouse;

use crate::command::Department;

/// Every department, in the order tools list them. `edison <name>`, the scripts (through
/// `edison departments`), compose and the pipeline test all read this list.
pub const DEPARTMENTS: &[Department] = &[
    Department::of::<Warehouse>(),
    Department::of::<Assembly>(),
    Department::of::<Billing>(),
    Department::of::<Shipping>(),
    Department::of::<Mailer>(),
    Department::of::<Dashboard>(),
    Department::of::<customers::Customers>(),
];

/// The department called `name`.
pub fn find(name: &str) -> Option<&'static Department> {
    DEPARTMENTS.iter().find(|department| department.name == name)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn names_are_unique_lower_case_words_fit_for_groups_files_and_schemas() {
        let mut seen = HashSet::new();
        for department in DEPARTMENTS {
            assert!(seen.insert(department.name), "{} is listed twice", department.name);
            assert!(
                !department.name.is_empty() && department.name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{:?} cannot name a PostgreSQL schema as it is",
                department.name
            );
            assert!(!department.tables.is_empty() && !department.about.is_empty(), "{}", department.name);
        }
        assert_eq!(find("warehouse").map(|d| d.name), Some("warehouse"));
        assert!(find("sales").is_none());
    }

    #[test]
    fn every_department_parses_its_own_command_line() {
        for department in DEPARTMENTS {
            let matches = (department.command)()
                .try_get_matches_from([department.name, "--topic", "t", "run", "--until-caught-up"])
                .unwrap_or_else(|error| panic!("{}: {error}", department.name));
            assert_eq!(matches.get_one::<String>("topic").map(String::as_str), Some("t"));
        }
    }
}
