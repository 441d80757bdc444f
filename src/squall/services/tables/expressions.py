"""DynamoDB's expression language: a tokenizer and a recursive-descent parser.

One parser serves the five expression parameters (condition, filter, key condition, update and
projection). Placeholders are resolved while parsing (``#n`` from ExpressionAttributeNames, ``:v``
from ExpressionAttributeValues) and every placeholder used is recorded in a :class:`Placeholders`,
so the caller can report the unused ones after parsing all the expressions of a request, as AWS does.

Grammar (keywords case-insensitive, function names case-sensitive)::

    condition   := disjunct ("OR" disjunct)*
    disjunct    := conjunct ("AND" conjunct)*
    conjunct    := "NOT" conjunct | "(" condition ")" | function | comparison
    comparison  := operand (comparator operand | "BETWEEN" operand "AND" operand
                            | "IN" "(" operand ("," operand)* ")")
    function    := name "(" operand ("," operand)* ")"
    operand     := path | ":value" | "size" "(" path ")"
    path        := (name | "#name") ("." (name | "#name") | "[" digits "]")*
    update      := (("SET" set ("," set)*) | ("REMOVE" path ("," path)*)
                    | ("ADD" path ":value" ("," ...)*) | ("DELETE" path ":value" ("," ...)*))+
    set         := path "=" term (("+" | "-") term)?
    term        := path | ":value" | "if_not_exists" "(" path "," term ")" | "list_append" "(" term "," term ")"
    projection  := path ("," path)*
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from squall.services.tables.errors import Validation
from squall.services.tables.reserved import RESERVED_WORDS
from squall.services.tables.types import SET_TYPES, Value, order, type_of

PathElement = str | int
COMPARATORS = ("=", "<>", "<", "<=", ">", ">=")
CONDITION_FUNCTIONS = ("attribute_exists", "attribute_not_exists", "attribute_type", "begins_with", "contains")
UPDATE_FUNCTIONS = ("if_not_exists", "list_append")
_ARITY = {
    "attribute_exists": 1,
    "attribute_not_exists": 1,
    "attribute_type": 2,
    "begins_with": 2,
    "contains": 2,
    "size": 1,
    "if_not_exists": 2,
    "list_append": 2,
}
_PUNCTUATION = ("<=", ">=", "<>", "=", "<", ">", "(", ")", "[", "]", ",", ".", "+", "-")
#: How ADD/DELETE name a wrong operand type in their error message.
TYPE_WORDS = {"S": "STRING", "N": "NUMBER", "B": "BINARY", "BOOL": "BOOLEAN", "NULL": "NULL", "M": "MAP", "L": "LIST"}


# --- the syntax tree ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Path:
    """A document path: attribute names and list indexes."""

    elements: tuple[PathElement, ...]

    def show(self) -> str:
        """The path as AWS prints it in messages: ``[a, b, [0]]``."""
        return "[" + ", ".join(f"[{e}]" if isinstance(e, int) else e for e in self.elements) + "]"


@dataclass(frozen=True, slots=True)
class Literal:
    """A value from ExpressionAttributeValues."""

    name: str
    value: Value


@dataclass(frozen=True, slots=True)
class Size:
    operand: Operand


Operand = Path | Literal | Size


@dataclass(frozen=True, slots=True)
class Compare:
    op: str
    left: Operand
    right: Operand


@dataclass(frozen=True, slots=True)
class Between:
    subject: Operand
    low: Operand
    high: Operand


@dataclass(frozen=True, slots=True)
class In:
    subject: Operand
    options: tuple[Operand, ...]


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    args: tuple[Operand, ...]


@dataclass(frozen=True, slots=True)
class And:
    left: Condition
    right: Condition


@dataclass(frozen=True, slots=True)
class Or:
    left: Condition
    right: Condition


@dataclass(frozen=True, slots=True)
class Not:
    inner: Condition


Condition = Compare | Between | In | Function | And | Or | Not


@dataclass(frozen=True, slots=True)
class IfNotExists:
    path: Path
    default: Term


@dataclass(frozen=True, slots=True)
class ListAppend:
    left: Term
    right: Term


@dataclass(frozen=True, slots=True)
class Arithmetic:
    op: str
    left: Term
    right: Term


Term = Path | Literal | IfNotExists | ListAppend
SetValue = Path | Literal | IfNotExists | ListAppend | Arithmetic


@dataclass(frozen=True, slots=True)
class Action:
    """One update action: ``kind`` is SET, REMOVE, ADD or DELETE; ``value`` is None for REMOVE."""

    kind: str
    path: Path
    value: SetValue | None = None


@dataclass(frozen=True, slots=True)
class Update:
    actions: tuple[Action, ...]


# --- placeholders -----------------------------------------------------------------------------------
@dataclass
class Placeholders:
    """ExpressionAttributeNames/Values of one request and which of them the expressions used."""

    names: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, Value] = field(default_factory=dict)
    used_names: set[str] = field(default_factory=set)
    used_values: set[str] = field(default_factory=set)

    def check_all_used(self) -> None:
        """ValidationException naming the placeholders no expression used."""
        unused_names = sorted(set(self.names) - self.used_names)
        if unused_names:
            keys = ", ".join(unused_names)
            raise Validation(f"Value provided in ExpressionAttributeNames unused in expressions: keys: {{{keys}}}")
        unused_values = sorted(set(self.values) - self.used_values)
        if unused_values:
            keys = ", ".join(unused_values)
            raise Validation(f"Value provided in ExpressionAttributeValues unused in expressions: keys: {{{keys}}}")


# --- tokens -----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "name", "#", ":", "digits", "eof" or the punctuation itself
    text: str
    start: int
    end: int


def tokenize(text: str, error: type[Exception] | None = None) -> list[Token]:
    """The tokens of ``text``; an unknown character becomes a one-character token the parser rejects."""
    tokens: list[Token] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c in "#:":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            tokens.append(Token(c, text[i:j], i, j))
            i = j
            continue
        if c.isalpha() or c == "_":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            tokens.append(Token("name", text[i:j], i, j))
            i = j
            continue
        if c.isdigit():
            j = i + 1
            while j < n and text[j].isdigit():
                j += 1
            tokens.append(Token("digits", text[i:j], i, j))
            i = j
            continue
        for p in _PUNCTUATION:
            if text.startswith(p, i):
                tokens.append(Token(p, p, i, i + len(p)))
                i += len(p)
                break
        else:
            tokens.append(Token("?", c, i, i + 1))
            i += 1
    tokens.append(Token("eof", "<EOF>", n, n))
    return tokens


# --- the parser -------------------------------------------------------------------------------------
class Parser:
    """Parses one expression parameter (``kind`` names it in error messages)."""

    def __init__(self, text: str, kind: str, placeholders: Placeholders) -> None:
        self.text = text
        self.kind = kind
        self.placeholders = placeholders
        self.tokens = tokenize(text)
        self.pos = 0

    # helpers
    def error(self, message: str) -> Validation:
        return Validation(f"Invalid {self.kind}: {message}")

    @property
    def token(self) -> Token:
        return self.tokens[self.pos]

    def peek(self, offset: int = 1) -> Token:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.tokens[self.pos]
        if token.kind != "eof":
            self.pos += 1
        return token

    def syntax_error(self) -> Validation:
        token = self.token
        before = self.tokens[self.pos - 1] if self.pos > 0 else token
        after = self.peek()
        # AWS quotes the offending token with its neighbours; at the end there is no next token.
        end = before.end if token.kind == "eof" else (token.end if after.kind == "eof" else after.end)
        near = self.text[before.start : end]
        return self.error(f'Syntax error; token: "{token.text}", near: "{near}"')

    def expect(self, kind: str) -> Token:
        if self.token.kind != kind:
            raise self.syntax_error()
        return self.advance()

    def keyword(self, word: str) -> bool:
        return self.token.kind == "name" and self.token.text.upper() == word

    def check_not_empty(self) -> None:
        if not self.text.strip():
            raise self.error("The expression can not be empty;")

    def finish(self) -> None:
        if self.token.kind != "eof":
            raise self.syntax_error()

    # entry points
    def condition(self) -> Condition:
        self.check_not_empty()
        result = self.parse_or()
        self.finish()
        return result

    def projection(self) -> list[Path]:
        self.check_not_empty()
        paths = [self.path()]
        while self.token.kind == ",":
            self.advance()
            paths.append(self.path())
        self.finish()
        check_overlaps(paths, self.error)
        return paths

    def update(self) -> Update:
        self.check_not_empty()
        actions: list[Action] = []
        seen: set[str] = set()
        while self.token.kind != "eof":
            if self.token.kind != "name" or self.token.text.upper() not in ("SET", "REMOVE", "ADD", "DELETE"):
                raise self.syntax_error()
            section = self.advance().text.upper()
            if section in seen:
                raise self.error(f'The "{section}" section can only be used once in an update expression;')
            seen.add(section)
            while True:
                actions.append(self.action(section))
                if self.token.kind != ",":
                    break
                self.advance()
        check_overlaps([a.path for a in actions], self.error)
        return Update(tuple(actions))

    # conditions
    def parse_or(self) -> Condition:
        left = self.parse_and()
        while self.keyword("OR"):
            self.advance()
            left = Or(left, self.parse_and())
        return left

    def parse_and(self) -> Condition:
        left = self.parse_not()
        while self.keyword("AND"):
            self.advance()
            left = And(left, self.parse_not())
        return left

    def parse_not(self) -> Condition:
        if self.keyword("NOT"):
            self.advance()
            return Not(self.parse_not())
        if self.token.kind == "(":
            self.advance()
            inner = self.parse_or()
            self.expect(")")
            return inner
        if self.token.kind == "name" and self.peek().kind == "(" and self.token.text != "size":
            name = self.token.text
            if name not in CONDITION_FUNCTIONS:
                if name in UPDATE_FUNCTIONS:
                    raise self.error(f"The function is not allowed in a condition expression; function: {name}")
                raise self.error(f"Invalid function name; function: {name}")
            return self.function()
        return self.comparison()

    def comparison(self) -> Condition:
        subject = self.operand()
        token = self.token
        if token.kind in COMPARATORS:
            self.advance()
            right = self.operand()
            if token.kind != "=" and token.kind != "<>":
                for side in (subject, right):
                    self.check_literal_type(side, token.kind, ("S", "N", "B"))
            return Compare(token.kind, subject, right)
        if self.keyword("BETWEEN"):
            self.advance()
            low = self.operand()
            if not self.keyword("AND"):
                raise self.syntax_error()
            self.advance()
            high = self.operand()
            self.check_bounds(low, high)
            return Between(subject, low, high)
        if self.keyword("IN"):
            self.advance()
            self.expect("(")
            options = [self.operand()]
            while self.token.kind == ",":
                self.advance()
                options.append(self.operand())
            self.expect(")")
            if len(options) > 100:
                raise self.error(
                    f"The IN operator is provided with too many operands; number of operands: {len(options)}"
                )  # unverified: wording from memory of AWS's message
            return In(subject, tuple(options))
        raise self.syntax_error()

    def check_bounds(self, low: Operand, high: Operand) -> None:
        if isinstance(low, Literal) and isinstance(high, Literal) and order(low.value, high.value) == 1:
            raise self.error(
                "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; "
                f"lower bound operand: AttributeValue: {_show(low.value)}, upper bound operand: "
                f"AttributeValue: {_show(high.value)}"
            )

    def function(self) -> Function:
        name = self.advance().text
        args = self.arguments(name)
        if name != "contains" and not isinstance(args[0], Path):
            raise self.error(f"Operator or function requires a document path; operator or function: {name}")
        if name == "attribute_type":
            kind = args[1]
            if not isinstance(kind, Literal) or type_of(kind.value) != "S":
                raise self.error(
                    "Incorrect operand type for operator or function; operator or function: attribute_type, "
                    f"operand type: {_operand_type(kind)}"
                )
            if kind.value["S"] not in ("S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"):
                raise self.error(
                    f"Invalid attribute type name found; type: {kind.value['S']}, "
                    "valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}"
                )
        if name == "begins_with":
            for arg in args:
                self.check_literal_type(arg, name, ("S", "B"))
        return Function(name, tuple(args))

    def arguments(self, name: str) -> list[Operand]:
        self.expect("(")
        args = [self.operand()]
        while self.token.kind == ",":
            self.advance()
            args.append(self.operand())
        self.expect(")")
        if len(args) != _ARITY[name]:
            raise self.error(
                f"Incorrect number of operands for operator or function; operator or function: {name}, "
                f"number of operands: {len(args)}"
            )
        return args

    def check_literal_type(self, operand: Operand, op: str, allowed: tuple[str, ...]) -> None:
        if isinstance(operand, Literal) and type_of(operand.value) not in allowed:
            raise self.error(
                f"Incorrect operand type for operator or function; operator or function: {op}, "
                f"operand type: {type_of(operand.value)}"
            )

    def operand(self) -> Operand:
        token = self.token
        if token.kind == ":":
            return self.literal()
        if token.kind == "name" and self.peek().kind == "(":
            if token.text == "size":
                self.advance()
                (arg,) = self.arguments("size")
                if isinstance(arg, Literal) and type_of(arg.value) in ("N", "BOOL", "NULL"):
                    raise self.error(
                        "Incorrect operand type for operator or function; operator or function: size, "
                        f"operand type: {type_of(arg.value)}"
                    )
                return Size(arg)
            if token.text in CONDITION_FUNCTIONS:
                raise self.error(
                    f"The function is not allowed to be used this way in an expression; function: {token.text}"
                )
            raise self.error(f"Invalid function name; function: {token.text}")
        return self.path()

    def literal(self) -> Literal:
        token = self.expect(":")
        if token.text not in self.placeholders.values:
            raise self.error(
                f"An expression attribute value used in expression is not defined; attribute value: {token.text}"
            )
        self.placeholders.used_values.add(token.text)
        return Literal(token.text, self.placeholders.values[token.text])

    def path(self) -> Path:
        elements: list[PathElement] = [self.path_name()]
        while self.token.kind in (".", "["):
            if self.advance().kind == ".":
                elements.append(self.path_name())
            else:
                index = self.expect("digits")
                self.expect("]")
                elements.append(int(index.text))
        return Path(tuple(elements))

    def path_name(self) -> str:
        token = self.token
        if token.kind == "#":
            self.advance()
            if token.text not in self.placeholders.names:
                raise self.error(
                    "An expression attribute name used in the document path is not defined; "
                    f"attribute name: {token.text}"
                )
            self.placeholders.used_names.add(token.text)
            return self.placeholders.names[token.text]
        if token.kind == "name":
            if token.text.upper() in RESERVED_WORDS:
                raise self.error(f"Attribute name is a reserved keyword; reserved keyword: {token.text}")
            self.advance()
            return token.text
        raise self.syntax_error()

    # updates
    def action(self, section: str) -> Action:
        path = self.path()
        if section == "REMOVE":
            return Action("REMOVE", path)
        if section == "SET":
            self.expect("=")
            return Action("SET", path, self.set_value())
        value = self.literal()
        kind = type_of(value.value)
        allowed = ("N", *SET_TYPES) if section == "ADD" else tuple(SET_TYPES)
        if kind not in allowed:
            # The ADD text is AWS's (seen in real error reports); DELETE's typeSet name is by analogy.
            raise self.error(
                f"Incorrect operand type for operator or function; operator: {section}, "
                f"operand type: {TYPE_WORDS.get(kind, kind)}, typeSet: ALLOWED_FOR_{section}_OPERAND"
            )
        return Action(section, path, value)

    def set_value(self) -> SetValue:
        left = self.term()
        if self.token.kind in ("+", "-"):
            op = self.advance().kind
            right = self.term()
            for side in (left, right):
                self.check_literal_type(side, op, ("N",))  # type: ignore[arg-type]
            return Arithmetic(op, left, right)
        return left

    def term(self) -> Term:
        token = self.token
        if token.kind == ":":
            return self.literal()
        if token.kind == "name" and self.peek().kind == "(":
            name = token.text
            if name not in UPDATE_FUNCTIONS:
                if name in CONDITION_FUNCTIONS or name == "size":
                    raise self.error(f"The function is not allowed in a update expression; function: {name}")
                raise self.error(f"Invalid function name; function: {name}")
            self.advance()
            self.expect("(")
            first = self.term()
            self.expect(",")
            second = self.term()
            if self.token.kind == ",":
                count = 3
                while self.token.kind == ",":
                    self.advance()
                    self.term()
                    count += 1
                raise self.error(
                    f"Incorrect number of operands for operator or function; operator or function: {name}, "
                    f"number of operands: {count}"
                )
            self.expect(")")
            if name == "if_not_exists":
                if not isinstance(first, Path):
                    raise self.error(f"Operator or function requires a document path; operator or function: {name}")
                return IfNotExists(first, second)
            for side in (first, second):
                if isinstance(side, Literal) and type_of(side.value) != "L":
                    raise self.error(
                        "Incorrect operand type for operator or function; operator or function: list_append, "
                        f"operand type: {type_of(side.value)}"
                    )
            return ListAppend(first, second)
        return self.path()


def check_overlaps(paths: list[Path], make: Callable[[str], Validation] = Validation) -> None:
    """ValidationException if two paths overlap (one is a prefix of the other) or conflict (one uses a
    map key where the other uses a list index)."""
    for i, one in enumerate(paths):
        for two in paths[i + 1 :]:
            for a, b in zip(one.elements, two.elements, strict=False):
                if a == b and type(a) is type(b):
                    continue
                if isinstance(a, int) != isinstance(b, int):
                    raise make(
                        "Two document paths conflict with each other; must remove or rewrite one of these paths; "
                        f"path one: {one.show()}, path two: {two.show()}"
                    )
                break
            else:
                raise make(
                    "Two document paths overlap with each other; must remove or rewrite one of these paths; "
                    f"path one: {one.show()}, path two: {two.show()}"
                )


def _show(value: Value) -> str:
    kind = type_of(value)
    return f"{{{kind}:{value[kind]}}}"


def _operand_type(operand: Operand) -> str:
    if isinstance(operand, Literal):
        return type_of(operand.value)
    return "path"


# --- convenience --------------------------------------------------------------------------------------
def parse_condition(text: str, kind: str, placeholders: Placeholders) -> Condition:
    return Parser(text, kind, placeholders).condition()


def parse_update(text: str, placeholders: Placeholders) -> Update:
    return Parser(text, "UpdateExpression", placeholders).update()


def parse_projection(text: str, placeholders: Placeholders) -> list[Path]:
    return Parser(text, "ProjectionExpression", placeholders).projection()
