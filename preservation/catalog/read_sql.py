"""The SQL of the quick read-only queries, for SQLite and PostgreSQL: GENERATED, do not edit.

Written by ``python -m preservation.read_queries`` from the definitions in
:mod:`preservation.read_queries` (tests/test_read_queries.py holds the two equal); run by
:class:`preservation.catalog.reader.Reader`.
"""

QUERIES = {'incidents.dead_jobs': {'columns': ('count',),
                         'kinds': (None,),
                         'postgresql': {'params': {'state_1': 'dead'},
                                        'runtime': ('since', 'until'),
                                        'sql': 'SELECT count(*) AS count \n'
                                               'FROM jobs \n'
                                               'WHERE jobs.state = %(state_1)s::VARCHAR AND jobs.finished_at >= '
                                               '%(since)s::TIMESTAMP WITHOUT TIME ZONE AND (%(until)s::TIMESTAMP '
                                               'WITHOUT TIME ZONE IS NULL OR jobs.finished_at < %(until)s::TIMESTAMP '
                                               'WITHOUT TIME ZONE)'},
                         'sqlite': {'params': {'state_1': 'dead'},
                                    'runtime': ('since', 'until'),
                                    'sql': 'SELECT count(*) AS count \n'
                                           'FROM jobs \n'
                                           'WHERE jobs.state = :state_1 AND jobs.finished_at >= :since AND (:until IS '
                                           'NULL OR jobs.finished_at < :until)'}},
 'incidents.failures': {'columns': ('seq', 'occurred_at', 'event_type', 'node_name', 'package_id', 'detail'),
                        'kinds': (None, 'datetime', None, None, None, 'json'),
                        'postgresql': {'params': {'outcome_1': 'failure'},
                                       'runtime': ('since', 'until'),
                                       'sql': 'SELECT events.seq AS seq, events.occurred_at AS occurred_at, '
                                              'events.event_type AS event_type, events.node_name AS node_name, '
                                              'events.package_id AS package_id, events.detail AS detail \n'
                                              'FROM events \n'
                                              'WHERE events.outcome = %(outcome_1)s::VARCHAR AND events.occurred_at >= '
                                              '%(since)s::TIMESTAMP WITHOUT TIME ZONE AND (%(until)s::TIMESTAMP '
                                              'WITHOUT TIME ZONE IS NULL OR events.occurred_at < %(until)s::TIMESTAMP '
                                              'WITHOUT TIME ZONE) ORDER BY events.seq DESC'},
                        'sqlite': {'params': {'outcome_1': 'failure'},
                                   'runtime': ('since', 'until'),
                                   'sql': 'SELECT events.seq AS seq, events.occurred_at AS occurred_at, '
                                          'events.event_type AS event_type, events.node_name AS node_name, '
                                          'events.package_id AS package_id, events.detail AS detail \n'
                                          'FROM events \n'
                                          'WHERE events.outcome = :outcome_1 AND events.occurred_at >= :since AND '
                                          '(:until IS NULL OR events.occurred_at < :until) ORDER BY events.seq DESC'}},
 'incidents.repaired': {'columns': ('count',),
                        'kinds': (None,),
                        'postgresql': {'params': {'event_type_1': 'repair', 'outcome_1': 'success'},
                                       'runtime': ('since', 'until'),
                                       'sql': 'SELECT count(*) AS count \n'
                                              'FROM events \n'
                                              'WHERE events.event_type = %(event_type_1)s::VARCHAR AND events.outcome '
                                              '= %(outcome_1)s::VARCHAR AND events.occurred_at >= %(since)s::TIMESTAMP '
                                              'WITHOUT TIME ZONE AND (%(until)s::TIMESTAMP WITHOUT TIME ZONE IS NULL '
                                              'OR events.occurred_at < %(until)s::TIMESTAMP WITHOUT TIME ZONE)'},
                        'sqlite': {'params': {'event_type_1': 'repair', 'outcome_1': 'success'},
                                   'runtime': ('since', 'until'),
                                   'sql': 'SELECT count(*) AS count \n'
                                          'FROM events \n'
                                          'WHERE events.event_type = :event_type_1 AND events.outcome = :outcome_1 AND '
                                          'events.occurred_at >= :since AND (:until IS NULL OR events.occurred_at < '
                                          ':until)'}},
 'liveness.heartbeats': {'columns': ('role',
                                     'name',
                                     'host',
                                     'pid',
                                     'started_at',
                                     'last_seen_at',
                                     'stopped_at',
                                     'doing'),
                         'kinds': (None, None, None, None, 'datetime', 'datetime', 'datetime', 'json'),
                         'postgresql': {'params': {},
                                        'runtime': (),
                                        'sql': 'SELECT heartbeats.role AS role, heartbeats.name AS name, '
                                               'heartbeats.host AS host, heartbeats.pid AS pid, heartbeats.started_at '
                                               'AS started_at, heartbeats.last_seen_at AS last_seen_at, '
                                               'heartbeats.stopped_at AS stopped_at, heartbeats.doing AS doing \n'
                                               'FROM heartbeats ORDER BY heartbeats.last_seen_at DESC'},
                         'sqlite': {'params': {},
                                    'runtime': (),
                                    'sql': 'SELECT heartbeats.role AS role, heartbeats.name AS name, heartbeats.host '
                                           'AS host, heartbeats.pid AS pid, heartbeats.started_at AS started_at, '
                                           'heartbeats.last_seen_at AS last_seen_at, heartbeats.stopped_at AS '
                                           'stopped_at, heartbeats.doing AS doing \n'
                                           'FROM heartbeats ORDER BY heartbeats.last_seen_at DESC'}},
 'liveness.probes': {'columns': ('node_id', 'checked_at', 'reachable', 'unreachable_since', 'error'),
                     'kinds': (None, 'datetime', 'bool', 'datetime', None),
                     'postgresql': {'params': {},
                                    'runtime': (),
                                    'sql': 'SELECT node_probes.node_id AS node_id, node_probes.checked_at AS '
                                           'checked_at, node_probes.reachable AS reachable, '
                                           'node_probes.unreachable_since AS unreachable_since, node_probes.error AS '
                                           'error \n'
                                           'FROM node_probes'},
                     'sqlite': {'params': {},
                                'runtime': (),
                                'sql': 'SELECT node_probes.node_id AS node_id, node_probes.checked_at AS checked_at, '
                                       'node_probes.reachable AS reachable, node_probes.unreachable_since AS '
                                       'unreachable_since, node_probes.error AS error \n'
                                       'FROM node_probes'}},
 'nodes.by_name': {'columns': ('id',
                               'name',
                               'org_type',
                               'organisation',
                               'region',
                               'uri',
                               'status',
                               'capacity_bytes',
                               'read_budget_bytes_per_day'),
                   'kinds': (None, None, None, None, None, None, None, None, None),
                   'postgresql': {'params': {},
                                  'runtime': (),
                                  'sql': 'SELECT nodes.id AS id, nodes.name AS name, nodes.org_type AS org_type, '
                                         'nodes.organisation AS organisation, nodes.region AS region, nodes.uri AS '
                                         'uri, nodes.status AS status, nodes.capacity_bytes AS capacity_bytes, '
                                         'nodes.read_budget_bytes_per_day AS read_budget_bytes_per_day \n'
                                         'FROM nodes ORDER BY nodes.name'},
                   'sqlite': {'params': {},
                              'runtime': (),
                              'sql': 'SELECT nodes.id AS id, nodes.name AS name, nodes.org_type AS org_type, '
                                     'nodes.organisation AS organisation, nodes.region AS region, nodes.uri AS uri, '
                                     'nodes.status AS status, nodes.capacity_bytes AS capacity_bytes, '
                                     'nodes.read_budget_bytes_per_day AS read_budget_bytes_per_day \n'
                                     'FROM nodes ORDER BY nodes.name'}},
 'nodes.usage': {'columns': ('node_id', 'replicas', 'bytes'),
                 'kinds': (None, None, None),
                 'postgresql': {'params': {},
                                'runtime': (),
                                'sql': 'SELECT replicas.node_id AS node_id, count(replicas.id) AS replicas, '
                                       'sum(replicas.bytes) AS bytes \n'
                                       'FROM replicas GROUP BY replicas.node_id'},
                 'sqlite': {'params': {},
                            'runtime': (),
                            'sql': 'SELECT replicas.node_id AS node_id, count(replicas.id) AS replicas, '
                                   'sum(replicas.bytes) AS bytes \n'
                                   'FROM replicas GROUP BY replicas.node_id'}},
 'package.unrepairable_files': {'columns': ('path', 'node'),
                                'kinds': (None, None),
                                'postgresql': {'params': {},
                                               'runtime': ('package_id',),
                                               'sql': 'SELECT unrepairable_files.path AS path, nodes.name AS node \n'
                                                      'FROM unrepairable_files JOIN replicas ON replicas.id = '
                                                      'unrepairable_files.replica_id JOIN nodes ON nodes.id = '
                                                      'replicas.node_id \n'
                                                      'WHERE unrepairable_files.package_id = %(package_id)s::VARCHAR '
                                                      'ORDER BY unrepairable_files.path, nodes.name'},
                                'sqlite': {'params': {},
                                           'runtime': ('package_id',),
                                           'sql': 'SELECT unrepairable_files.path AS path, nodes.name AS node \n'
                                                  'FROM unrepairable_files JOIN replicas ON replicas.id = '
                                                  'unrepairable_files.replica_id JOIN nodes ON nodes.id = '
                                                  'replicas.node_id \n'
                                                  'WHERE unrepairable_files.package_id = :package_id ORDER BY '
                                                  'unrepairable_files.path, nodes.name'}},
 'status.damaged_packages': {'columns': ('id', 'name'),
                             'kinds': (None, None),
                             'postgresql': {'params': {'param_1': 50, 'state_1': 'damaged'},
                                            'runtime': (),
                                            'sql': 'SELECT packages.id AS id, packages.name AS name \n'
                                                   'FROM packages \n'
                                                   'WHERE packages.state = %(state_1)s::VARCHAR ORDER BY '
                                                   'packages.created_at \n'
                                                   ' LIMIT %(param_1)s::INTEGER'},
                             'sqlite': {'params': {'param_1': 50, 'param_2': 0, 'state_1': 'damaged'},
                                        'runtime': (),
                                        'sql': 'SELECT packages.id AS id, packages.name AS name \n'
                                               'FROM packages \n'
                                               'WHERE packages.state = :state_1 ORDER BY packages.created_at\n'
                                               ' LIMIT :param_1 OFFSET :param_2'}},
 'status.dead_jobs': {'columns': ('id', 'kind', 'package_id', 'last_error'),
                      'kinds': (None, None, None, None),
                      'postgresql': {'params': {'param_1': 50, 'state_1': 'dead'},
                                     'runtime': (),
                                     'sql': 'SELECT jobs.id AS id, jobs.kind AS kind, jobs.package_id AS package_id, '
                                            'jobs.last_error AS last_error \n'
                                            'FROM jobs \n'
                                            'WHERE jobs.state = %(state_1)s::VARCHAR ORDER BY jobs.id DESC \n'
                                            ' LIMIT %(param_1)s::INTEGER'},
                      'sqlite': {'params': {'param_1': 50, 'param_2': 0, 'state_1': 'dead'},
                                 'runtime': (),
                                 'sql': 'SELECT jobs.id AS id, jobs.kind AS kind, jobs.package_id AS package_id, '
                                        'jobs.last_error AS last_error \n'
                                        'FROM jobs \n'
                                        'WHERE jobs.state = :state_1 ORDER BY jobs.id DESC\n'
                                        ' LIMIT :param_1 OFFSET :param_2'}},
 'status.jobs_by_state': {'columns': ('state', 'count'),
                          'kinds': (None, None),
                          'postgresql': {'params': {},
                                         'runtime': (),
                                         'sql': 'SELECT jobs.state AS state, count(*) AS count \n'
                                                'FROM jobs GROUP BY jobs.state'},
                          'sqlite': {'params': {},
                                     'runtime': (),
                                     'sql': 'SELECT jobs.state AS state, count(*) AS count \n'
                                            'FROM jobs GROUP BY jobs.state'}},
 'status.locked_files': {'columns': ('encrypted', 'drm', 'locked'),
                         'kinds': (None, None, None),
                         'postgresql': {'params': {'coalesce_1': 0,
                                                   'coalesce_2': 0,
                                                   'coalesce_3': 0,
                                                   'param_1': 1,
                                                   'param_2': 0,
                                                   'param_3': 1,
                                                   'param_4': 0,
                                                   'param_5': 1,
                                                   'param_6': 0},
                                        'runtime': (),
                                        'sql': 'SELECT coalesce(sum(CASE WHEN (file_formats.encrypted IS true) THEN '
                                               '%(param_1)s::INTEGER ELSE %(param_2)s::INTEGER END), '
                                               '%(coalesce_1)s::INTEGER) AS encrypted, coalesce(sum(CASE WHEN '
                                               '(file_formats.drm IS true) THEN %(param_3)s::INTEGER ELSE '
                                               '%(param_4)s::INTEGER END), %(coalesce_2)s::INTEGER) AS drm, '
                                               'coalesce(sum(CASE WHEN (file_formats.encrypted IS true OR '
                                               'file_formats.drm IS true) THEN %(param_5)s::INTEGER ELSE '
                                               '%(param_6)s::INTEGER END), %(coalesce_3)s::INTEGER) AS locked \n'
                                               'FROM file_formats \n'
                                               'WHERE file_formats.encrypted IS true OR file_formats.drm IS true'},
                         'sqlite': {'params': {'coalesce_1': 0,
                                               'coalesce_2': 0,
                                               'coalesce_3': 0,
                                               'param_1': 1,
                                               'param_2': 0,
                                               'param_3': 1,
                                               'param_4': 0,
                                               'param_5': 1,
                                               'param_6': 0},
                                    'runtime': (),
                                    'sql': 'SELECT coalesce(sum(CASE WHEN (file_formats.encrypted IS 1) THEN :param_1 '
                                           'ELSE :param_2 END), :coalesce_1) AS encrypted, coalesce(sum(CASE WHEN '
                                           '(file_formats.drm IS 1) THEN :param_3 ELSE :param_4 END), :coalesce_2) AS '
                                           'drm, coalesce(sum(CASE WHEN (file_formats.encrypted IS 1 OR '
                                           'file_formats.drm IS 1) THEN :param_5 ELSE :param_6 END), :coalesce_3) AS '
                                           'locked \n'
                                           'FROM file_formats \n'
                                           'WHERE file_formats.encrypted IS 1 OR file_formats.drm IS 1'}},
 'status.oldest_verified': {'columns': ('oldest',),
                            'kinds': ('datetime',),
                            'postgresql': {'params': {},
                                           'runtime': (),
                                           'sql': 'SELECT min(replicas.verified_at) AS oldest \nFROM replicas'},
                            'sqlite': {'params': {},
                                       'runtime': (),
                                       'sql': 'SELECT min(replicas.verified_at) AS oldest \nFROM replicas'}},
 'status.packages_by_state': {'columns': ('state', 'count', 'bytes'),
                              'kinds': (None, None, None),
                              'postgresql': {'params': {'coalesce_1': 0,
                                                        'coalesce_2': 1,
                                                        'param_1': 1,
                                                        'param_2': 0,
                                                        'rank_1': 1,
                                                        'state_1': 'deaccessioned'},
                                             'runtime': (),
                                             'sql': 'SELECT packages.state AS state, count(*) AS count, '
                                                    'coalesce(sum(packages.total_bytes), %(coalesce_1)s::INTEGER) AS '
                                                    'bytes \n'
                                                    'FROM packages JOIN (SELECT ranked.id AS id, ranked.lineage_id AS '
                                                    'lineage_id, ranked.number AS number \n'
                                                    'FROM (SELECT packages.id AS id, '
                                                    'coalesce(package_versions.lineage_id, packages.id) AS lineage_id, '
                                                    'coalesce(package_versions.number, %(coalesce_2)s::INTEGER) AS '
                                                    'number, row_number() OVER (PARTITION BY '
                                                    'coalesce(package_versions.lineage_id, packages.id), '
                                                    'packages.state ORDER BY CASE WHEN (packages.state = '
                                                    '%(state_1)s::VARCHAR) THEN %(param_1)s::INTEGER ELSE '
                                                    '%(param_2)s::INTEGER END, coalesce(package_versions.number, '
                                                    '%(coalesce_2)s::INTEGER) DESC) AS rank \n'
                                                    'FROM packages LEFT OUTER JOIN package_versions ON '
                                                    'package_versions.package_id = packages.id) AS ranked \n'
                                                    'WHERE ranked.rank = %(rank_1)s::INTEGER) AS heads ON heads.id = '
                                                    'packages.id GROUP BY packages.state'},
                              'sqlite': {'params': {'coalesce_1': 0,
                                                    'coalesce_2': 1,
                                                    'param_1': 1,
                                                    'param_2': 0,
                                                    'rank_1': 1,
                                                    'state_1': 'deaccessioned'},
                                         'runtime': (),
                                         'sql': 'SELECT packages.state AS state, count(*) AS count, '
                                                'coalesce(sum(packages.total_bytes), :coalesce_1) AS bytes \n'
                                                'FROM packages JOIN (SELECT ranked.id AS id, ranked.lineage_id AS '
                                                'lineage_id, ranked.number AS number \n'
                                                'FROM (SELECT packages.id AS id, coalesce(package_versions.lineage_id, '
                                                'packages.id) AS lineage_id, coalesce(package_versions.number, '
                                                ':coalesce_2) AS number, row_number() OVER (PARTITION BY '
                                                'coalesce(package_versions.lineage_id, packages.id), packages.state '
                                                'ORDER BY CASE WHEN (packages.state = :state_1) THEN :param_1 ELSE '
                                                ':param_2 END, coalesce(package_versions.number, :coalesce_2) DESC) AS '
                                                'rank \n'
                                                'FROM packages LEFT OUTER JOIN package_versions ON '
                                                'package_versions.package_id = packages.id) AS ranked \n'
                                                'WHERE ranked.rank = :rank_1) AS heads ON heads.id = packages.id GROUP '
                                                'BY packages.state'}},
 'status.per_node': {'columns': ('node_id',
                                 'replicas',
                                 'bytes',
                                 'verified',
                                 'verified_in_interval',
                                 'oldest_verified',
                                 'next_audit'),
                     'kinds': (None, None, None, None, None, 'datetime', 'datetime'),
                     'postgresql': {'params': {'coalesce_1': 0,
                                               'param_1': 1,
                                               'param_2': 0,
                                               'param_3': 1,
                                               'param_4': 0,
                                               'state_1': 'verified',
                                               'state_2': 'verified'},
                                    'runtime': ('window_start',),
                                    'sql': 'SELECT replicas.node_id AS node_id, count(*) AS replicas, '
                                           'coalesce(sum(replicas.bytes), %(coalesce_1)s::INTEGER) AS bytes, sum(CASE '
                                           'WHEN (replicas.state = %(state_1)s::VARCHAR) THEN %(param_1)s::INTEGER '
                                           'ELSE %(param_2)s::INTEGER END) AS verified, sum(CASE WHEN (replicas.state '
                                           '= %(state_2)s::VARCHAR AND replicas.verified_at >= '
                                           '%(window_start)s::TIMESTAMP WITHOUT TIME ZONE) THEN %(param_3)s::INTEGER '
                                           'ELSE %(param_4)s::INTEGER END) AS verified_in_interval, '
                                           'min(replicas.verified_at) AS oldest_verified, min(replicas.next_audit_at) '
                                           'AS next_audit \n'
                                           'FROM replicas GROUP BY replicas.node_id'},
                     'sqlite': {'params': {'coalesce_1': 0,
                                           'param_1': 1,
                                           'param_2': 0,
                                           'param_3': 1,
                                           'param_4': 0,
                                           'state_1': 'verified',
                                           'state_2': 'verified'},
                                'runtime': ('window_start',),
                                'sql': 'SELECT replicas.node_id AS node_id, count(*) AS replicas, '
                                       'coalesce(sum(replicas.bytes), :coalesce_1) AS bytes, sum(CASE WHEN '
                                       '(replicas.state = :state_1) THEN :param_1 ELSE :param_2 END) AS verified, '
                                       'sum(CASE WHEN (replicas.state = :state_2 AND replicas.verified_at >= '
                                       ':window_start) THEN :param_3 ELSE :param_4 END) AS verified_in_interval, '
                                       'min(replicas.verified_at) AS oldest_verified, min(replicas.next_audit_at) AS '
                                       'next_audit \n'
                                       'FROM replicas GROUP BY replicas.node_id'}},
 'status.replicas_by_state': {'columns': ('state', 'count'),
                              'kinds': (None, None),
                              'postgresql': {'params': {},
                                             'runtime': (),
                                             'sql': 'SELECT replicas.state AS state, count(*) AS count \n'
                                                    'FROM replicas GROUP BY replicas.state'},
                              'sqlite': {'params': {},
                                         'runtime': (),
                                         'sql': 'SELECT replicas.state AS state, count(*) AS count \n'
                                                'FROM replicas GROUP BY replicas.state'}},
 'status.unrepairable_count': {'columns': ('count',),
                               'kinds': (None,),
                               'postgresql': {'params': {},
                                              'runtime': ('package_id',),
                                              'sql': 'SELECT count(distinct(unrepairable_files.path)) AS count \n'
                                                     'FROM unrepairable_files \n'
                                                     'WHERE unrepairable_files.package_id = %(package_id)s::VARCHAR'},
                               'sqlite': {'params': {},
                                          'runtime': ('package_id',),
                                          'sql': 'SELECT count(distinct(unrepairable_files.path)) AS count \n'
                                                 'FROM unrepairable_files \n'
                                                 'WHERE unrepairable_files.package_id = :package_id'}},
 'status.version_holders': {'columns': ('package_id', 'node'),
                            'kinds': (None, None),
                            'postgresql': {'params': {},
                                           'runtime': (),
                                           'sql': 'SELECT replicas.package_id AS package_id, nodes.name AS node \n'
                                                  'FROM replicas JOIN nodes ON nodes.id = replicas.node_id JOIN '
                                                  'package_versions ON package_versions.package_id = '
                                                  'replicas.package_id'},
                            'sqlite': {'params': {},
                                       'runtime': (),
                                       'sql': 'SELECT replicas.package_id AS package_id, nodes.name AS node \n'
                                              'FROM replicas JOIN nodes ON nodes.id = replicas.node_id JOIN '
                                              'package_versions ON package_versions.package_id = replicas.package_id'}},
 'status.versions': {'columns': ('lineage_id', 'package_id', 'changes'),
                     'kinds': (None, None, 'json'),
                     'postgresql': {'params': {},
                                    'runtime': (),
                                    'sql': 'SELECT package_versions.lineage_id AS lineage_id, '
                                           'package_versions.package_id AS package_id, package_versions.changes AS '
                                           'changes \n'
                                           'FROM package_versions'},
                     'sqlite': {'params': {},
                                'runtime': (),
                                'sql': 'SELECT package_versions.lineage_id AS lineage_id, package_versions.package_id '
                                       'AS package_id, package_versions.changes AS changes \n'
                                       'FROM package_versions'}},
 'status.versions_by_state': {'columns': ('state', 'count'),
                              'kinds': (None, None),
                              'postgresql': {'params': {},
                                             'runtime': (),
                                             'sql': 'SELECT packages.state AS state, count(*) AS count \n'
                                                    'FROM packages GROUP BY packages.state'},
                              'sqlite': {'params': {},
                                         'runtime': (),
                                         'sql': 'SELECT packages.state AS state, count(*) AS count \n'
                                                'FROM packages GROUP BY packages.state'}}}
