//! The filters of instance lists: columns of `instances.rs`'s list SELECT (`i` the
//! instance, `u` its owner). A type id refers to the types of the list's class.

use crate::filter::{FilterField, IdTable, Kind};
use crate::types::TypeClass;

/// The six states, as the `state` filter accepts them.
const STATES: &[&str] = &[
    "created",
    "published",
    "running",
    "successful",
    "failed",
    "terminated",
];

const fn filter(name: &'static str, column: &'static str, kind: Kind) -> FilterField {
    FilterField { name, column, kind }
}

const fn filters(types: IdTable) -> [FilterField; 7] {
    [
        filter("name", "i.name", Kind::Text),
        filter("state", "i.state", Kind::Choice(STATES)),
        filter("user__username", "u.username", Kind::Text),
        filter(
            "task_type",
            "COALESCE(i.container_task_type_id, i.executable_task_type_id)",
            Kind::Fk(types),
        ),
        filter("task_queue", "i.task_queue_id", Kind::Fk(IdTable::Queues)),
        filter("datetime_created", "i.datetime_created", Kind::Time),
        filter("datetime_finished", "i.datetime_finished", Kind::Time),
    ]
}

const CONTAINER: [FilterField; 7] = filters(IdTable::ContainerTypes);
const EXECUTABLE: [FilterField; 7] = filters(IdTable::ExecutableTypes);

/// The filters of the instance list of `class`.
pub const fn instance_filters(class: TypeClass) -> &'static [FilterField] {
    match class {
        TypeClass::Container => &CONTAINER,
        TypeClass::Executable => &EXECUTABLE,
    }
}
