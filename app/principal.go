package app

import "github.com/quidpro/quid/domain"

// Role is what an authenticated caller may do.
type Role string

const (
	RoleMember   Role = "member"
	RoleMarketer Role = "marketer"
	RolePartner  Role = "partner"
	RoleAdmin    Role = "admin"
)

// Valid reports whether r is one of the four roles.
func (r Role) Valid() bool {
	switch r {
	case RoleMember, RoleMarketer, RolePartner, RoleAdmin:
		return true
	}
	return false
}

// Principal is an authenticated caller: Subject is the member id for members
// and the recipient id for partners.
type Principal struct {
	Subject string
	Role    Role
}

// Require returns a forbidden error unless p holds one of roles.
func (p Principal) Require(roles ...Role) error {
	for _, r := range roles {
		if p.Role == r {
			return nil
		}
	}
	return domain.Forbidden("wrong-role", "this operation is not available to role "+string(p.Role))
}
