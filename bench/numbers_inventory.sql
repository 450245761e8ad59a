-- bench/numbers: an inventory of 1,000,000 available US numbers, in one
-- statement. 100 real area codes (NPAs) x 10,000 numbers each; every NPA
-- has 20 exchanges (NXX 200..999 without 555, N11 and 950/958/959/976) of
-- 500 lines each, the lines spread over 0000..9999 by a permutation so the
-- numbers look random. The sandbox carrier's own area codes (415, 212,
-- 312, 646, 650) are left out: searching those refills from the carrier,
-- which the order flow of the bench needs.
\set ON_ERROR_STOP on
WITH npa (i, code, city, region) AS (
    VALUES (0, '201', 'Jersey City', 'NJ'), (1, '202', 'Washington', 'DC'),
           (2, '203', 'New Haven', 'CT'), (3, '205', 'Birmingham', 'AL'),
           (4, '206', 'Seattle', 'WA'), (5, '207', 'Portland', 'ME'),
           (6, '208', 'Boise', 'ID'), (7, '209', 'Stockton', 'CA'),
           (8, '210', 'San Antonio', 'TX'), (9, '213', 'Los Angeles', 'CA'),
           (10, '214', 'Dallas', 'TX'), (11, '215', 'Philadelphia', 'PA'),
           (12, '216', 'Cleveland', 'OH'), (13, '217', 'Springfield', 'IL'),
           (14, '218', 'Duluth', 'MN'), (15, '219', 'Gary', 'IN'),
           (16, '224', 'Evanston', 'IL'), (17, '225', 'Baton Rouge', 'LA'),
           (18, '228', 'Gulfport', 'MS'), (19, '229', 'Albany', 'GA'),
           (20, '231', 'Muskegon', 'MI'), (21, '234', 'Akron', 'OH'),
           (22, '239', 'Fort Myers', 'FL'), (23, '240', 'Bethesda', 'MD'),
           (24, '248', 'Troy', 'MI'), (25, '251', 'Mobile', 'AL'),
           (26, '252', 'Greenville', 'NC'), (27, '253', 'Tacoma', 'WA'),
           (28, '254', 'Waco', 'TX'), (29, '256', 'Huntsville', 'AL'),
           (30, '260', 'Fort Wayne', 'IN'), (31, '262', 'Kenosha', 'WI'),
           (32, '267', 'Philadelphia', 'PA'), (33, '269', 'Kalamazoo', 'MI'),
           (34, '270', 'Bowling Green', 'KY'), (35, '281', 'Houston', 'TX'),
           (36, '301', 'Silver Spring', 'MD'), (37, '302', 'Wilmington', 'DE'),
           (38, '303', 'Denver', 'CO'), (39, '304', 'Charleston', 'WV'),
           (40, '305', 'Miami', 'FL'), (41, '307', 'Cheyenne', 'WY'),
           (42, '308', 'Grand Island', 'NE'), (43, '309', 'Peoria', 'IL'),
           (44, '310', 'Santa Monica', 'CA'), (45, '313', 'Detroit', 'MI'),
           (46, '314', 'St. Louis', 'MO'), (47, '315', 'Syracuse', 'NY'),
           (48, '316', 'Wichita', 'KS'), (49, '317', 'Indianapolis', 'IN'),
           (50, '318', 'Shreveport', 'LA'), (51, '319', 'Cedar Rapids', 'IA'),
           (52, '320', 'St. Cloud', 'MN'), (53, '321', 'Orlando', 'FL'),
           (54, '323', 'Los Angeles', 'CA'), (55, '330', 'Akron', 'OH'),
           (56, '334', 'Montgomery', 'AL'), (57, '336', 'Greensboro', 'NC'),
           (58, '337', 'Lafayette', 'LA'), (59, '347', 'New York', 'NY'),
           (60, '352', 'Gainesville', 'FL'), (61, '360', 'Vancouver', 'WA'),
           (62, '361', 'Corpus Christi', 'TX'), (63, '386', 'Daytona Beach', 'FL'),
           (64, '401', 'Providence', 'RI'), (65, '402', 'Omaha', 'NE'),
           (66, '404', 'Atlanta', 'GA'), (67, '405', 'Oklahoma City', 'OK'),
           (68, '406', 'Billings', 'MT'), (69, '407', 'Orlando', 'FL'),
           (70, '408', 'San Jose', 'CA'), (71, '409', 'Beaumont', 'TX'),
           (72, '410', 'Baltimore', 'MD'), (73, '412', 'Pittsburgh', 'PA'),
           (74, '413', 'Springfield', 'MA'), (75, '414', 'Milwaukee', 'WI'),
           (76, '417', 'Springfield', 'MO'), (77, '419', 'Toledo', 'OH'),
           (78, '423', 'Chattanooga', 'TN'), (79, '425', 'Bellevue', 'WA'),
           (80, '432', 'Midland', 'TX'), (81, '434', 'Lynchburg', 'VA'),
           (82, '435', 'St. George', 'UT'), (83, '440', 'Parma', 'OH'),
           (84, '443', 'Baltimore', 'MD'), (85, '469', 'Dallas', 'TX'),
           (86, '478', 'Macon', 'GA'), (87, '479', 'Fort Smith', 'AR'),
           (88, '480', 'Mesa', 'AZ'), (89, '484', 'Allentown', 'PA'),
           (90, '501', 'Little Rock', 'AR'), (91, '502', 'Louisville', 'KY'),
           (92, '503', 'Portland', 'OR'), (93, '504', 'New Orleans', 'LA'),
           (94, '505', 'Albuquerque', 'NM'), (95, '512', 'Austin', 'TX'),
           (96, '513', 'Cincinnati', 'OH'), (97, '602', 'Phoenix', 'AZ'),
           (98, '617', 'Boston', 'MA'), (99, '702', 'Las Vegas', 'NV')
), nxx AS (
    SELECT array_agg(n ORDER BY n) AS a
    FROM generate_series(200, 999) AS n
    WHERE n <> 555 AND n % 100 <> 11 AND n NOT IN (950, 958, 959, 976)
)
INSERT INTO numbers (e164, country, area_code, city, region, number_type,
                     features, status, carrier, monthly_rate_micros,
                     setup_fee_micros, currency)
SELECT '+1' || p.code
           || nxx.a[1 + ((g.k / 500) * 37 + p.i * 13) % cardinality(nxx.a)]::text
           || lpad(((((g.k % 500) * 20 + p.i % 20) * 7919 + 1234) % 10000)::text, 4, '0'),
       'US', p.code, p.city, p.region, 'local', '{voice,sms}', 'available',
       'sandbox', 1000000, 1000000, 'USD'
FROM (SELECT n / 10000 AS i, n % 10000 AS k
      FROM generate_series(0, 999999) AS n) AS g
JOIN npa AS p ON p.i = g.i
CROSS JOIN nxx;

ANALYZE numbers;
