//! The presets: which attributes and filters an Active Directory or an OpenLDAP/389
//! directory keeps its users and groups in. A [`Profile`] is a preset with the connector's
//! overrides applied; records are read through it.

/// Which kind of directory server; each gives a [`Profile`]'s defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// Microsoft Active Directory (and AD LDS, Samba AD).
    ActiveDirectory,
    /// OpenLDAP and 389 Directory Server (`inetOrgPerson`, `groupOfNames`...).
    OpenLdap,
}

impl Preset {
    /// The preset named in `preset = "..."`.
    pub fn parse(name: &str) -> Option<Preset> {
        match name {
            "active_directory" => Some(Preset::ActiveDirectory),
            "openldap" => Some(Preset::OpenLdap),
            _ => None,
        }
    }
}

/// What makes a user inactive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inactive {
    /// Active Directory: bit 2 (`0x2`, ACCOUNTDISABLE) of `userAccountControl`.
    AccountControl,
    /// The entry holds this attribute (OpenLDAP's ppolicy `pwdAccountLockedTime`).
    Present(String),
    /// The entry matches this LDAP filter (evaluated by the server, within the users'
    /// filter), such as 389-ds's `(nsAccountLock=TRUE)`.
    Filter(String),
}

/// The attribute names and filters a read uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub preset: Preset,
    /// The external id of users and groups (`objectGUID`, rendered as a GUID; `entryUUID`).
    pub id: String,
    pub user_name: String,
    pub email: String,
    pub given_name: String,
    pub family_name: String,
    /// The display name; when an entry has none, `cn`.
    pub display_name: String,
    pub group_name: String,
    pub group_description: String,
    /// Attributes holding member DNs (users or nested groups).
    pub member: Vec<String>,
    /// An attribute holding member logins (`posixGroup`'s `memberUid`), matched against
    /// users' `user_name`.
    pub member_uid: Option<String>,
    pub inactive: Inactive,
    /// Default search filters.
    pub user_filter: String,
    pub group_filter: String,
}

impl Profile {
    /// A preset's defaults.
    pub fn of(preset: Preset) -> Profile {
        let common =
            |id: &str, user_name: &str, member: &[&str], inactive, filters: [&str; 2]| Profile {
                preset,
                id: id.to_owned(),
                user_name: user_name.to_owned(),
                email: "mail".to_owned(),
                given_name: "givenName".to_owned(),
                family_name: "sn".to_owned(),
                display_name: "displayName".to_owned(),
                group_name: "cn".to_owned(),
                group_description: "description".to_owned(),
                member: member.iter().map(|m| (*m).to_owned()).collect(),
                member_uid: None,
                inactive,
                user_filter: filters[0].to_owned(),
                group_filter: filters[1].to_owned(),
            };
        match preset {
            Preset::ActiveDirectory => common(
                "objectGUID",
                "sAMAccountName",
                &["member"],
                Inactive::AccountControl,
                [
                    "(&(objectCategory=person)(objectClass=user))",
                    "(objectClass=group)",
                ],
            ),
            Preset::OpenLdap => Profile {
                member_uid: Some("memberUid".to_owned()),
                ..common(
                    "entryUUID",
                    "uid",
                    &["member", "uniqueMember"],
                    Inactive::Present("pwdAccountLockedTime".to_owned()),
                    [
                        "(objectClass=inetOrgPerson)",
                        "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)\
                         (objectClass=posixGroup))",
                    ],
                )
            },
        }
    }

    /// Whether the external id is Active Directory's binary `objectGUID`.
    pub fn id_is_guid(&self) -> bool {
        self.id.eq_ignore_ascii_case("objectGUID")
    }

    /// What a user search asks for: every user attribute (`*`) and, by name, the
    /// operational ones the profile reads (`entryUUID`, `pwdAccountLockedTime`), which
    /// `*` leaves out.
    pub fn user_attributes(&self) -> Vec<String> {
        let mut attrs = vec!["*".to_owned(), self.id.clone()];
        if let Inactive::Present(name) = &self.inactive {
            attrs.push(name.clone());
        }
        attrs
    }

    /// What a group search asks for.
    pub fn group_attributes(&self) -> Vec<String> {
        vec!["*".to_owned(), self.id.clone()]
    }

    /// The operational attributes the bind account must be able to read (checked by
    /// `diagnose`).
    pub fn operational(&self) -> Vec<&str> {
        let mut names = vec![self.id.as_str()];
        if let Inactive::Present(name) = &self.inactive {
            names.push(name);
        }
        names
    }
}
